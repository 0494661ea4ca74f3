/*
 * tsdb.c: the database: head, append, select, cut, compaction, retention.
 *
 * Locking (always taken in this order):
 *   gate       rwlock: appends hold it shared from classification until their
 *              samples are visible; a head cut holds it exclusively while it
 *              drops what its block holds and rotates the WAL, so no batch is
 *              half-applied across the rotation ("quiesce appends").
 *              Writer-preferring, so a cut is not starved by appends.
 *   head_lock  rwlock over the head: series table, postings, sample buffers,
 *              symbols.  Readers copy what they need and let go.
 *   blocks_mu  the block list and block reference counts.
 * maint_mu serialises cut, compaction and retention with each other.
 *
 * An append classifies its samples and creates its series under head_lock,
 * writes the WAL with no lock but the shared gate (so concurrent batches
 * share an fsync), then makes the samples visible.  A series' SERIES record
 * is logged by every batch until one of them reached the WAL, so a failed
 * WAL write never leaves samples whose series the log does not know.
 */
#include "tsdb.h"
#include "tsdb_internal.h"
#include "codec.h"
#include "format.h"
#include "strata_log.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- head series ------------------------------------------------------------ */

/* A sealed head chunk: this header, then the codec bytes. */
typedef struct hchunk {
    uint32_t len, n;
    int64_t mint, maxt;
    uint8_t data[];
} hchunk_t;

typedef struct hseries {
    uint64_t hash;         /* label_set_hash() of its label strings */
    uint32_t ref;
    uint16_t nlabels;
    uint8_t logged;        /* its SERIES record reached the WAL */
    uint8_t unused;
    uint16_t nraw, capraw; /* open buffer: in-order samples after the chunks */
    uint32_t nooo, capooo; /* out-of-order samples, sorted, merged on read */
    uint32_t nchunks;
    int64_t maxt;          /* newest sample (INT64_MIN: none yet) */
    tsdb_sample_t *raw;
    hchunk_t **chunks;
    tsdb_sample_t *ooo;
    uint32_t labels[];     /* nlabels (name, value) symbol pairs */
} hseries_t;

struct tsdb {
    tsdb_options_t opts;
    char *dir, *blocks_dir, *corrupt_dir;
    int lock_fd;
    pthread_rwlock_t gate, head_lock;
    pthread_mutex_t blocks_mu, maint_mu, obs_mu;

    tsdb_symtab_t syms;
    tsdb_head_index_t hidx;
    hseries_t **series;        /* by ref; NULL once collected */
    size_t series_cap;
    uint32_t next_ref;
    uint64_t *smap;            /* label-set hash table: hash >> 32 << 32 | ref + 1, 0 = empty */
    size_t smap_slots, smap_n;
    uint64_t head_series, head_samples, head_bytes;
    int64_t head_mint, head_maxt;
    struct { uint64_t from; uint32_t to; } *alias;  /* replay: WAL ref -> live ref */
    size_t nalias, alias_cap;

    tsdb_block_t **blocks;     /* live blocks, each holding one reference */
    size_t nblocks, blocks_cap;

    tsdb_wal_t *wal;
    tsdb_fsync_observer_fn obs_fn;
    void *obs_ctx;
    double fsync_seconds;
    atomic_uint_fast64_t samples_appended, wal_fsyncs, blocks_corrupt;
    uint64_t wal_corruptions;
    atomic_int replaying, closed;

    pthread_t bg;
    int bg_started, stopping;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
};

static size_t series_size(uint16_t nlabels) { return sizeof(hseries_t) + 2u * nlabels * sizeof(uint32_t); }

static void series_free_data(tsdb_t *db, hseries_t *s)
{
    for (uint32_t i = 0; i < s->nchunks; i++) {
        db->head_bytes -= sizeof(hchunk_t) + s->chunks[i]->len;
        free(s->chunks[i]);
    }
    db->head_bytes -= (uint64_t)(s->capraw + s->capooo) * sizeof(tsdb_sample_t) + s->nchunks * sizeof(void *);
    db->head_samples -= s->nooo + s->nraw;
    free(s->chunks);
    free(s->raw);
    free(s->ooo);
    s->chunks = NULL; s->raw = NULL; s->ooo = NULL;
    s->nchunks = 0; s->nraw = s->capraw = s->nooo = s->capooo = 0;
}

static uint64_t series_chunk_samples(const hseries_t *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->nchunks; i++) n += s->chunks[i]->n;
    return n;
}

/* Seals the open buffer into a codec chunk. */
static int series_seal(tsdb_t *db, hseries_t *s)
{
    uint8_t stackbuf[4096];
    size_t cap = tsdb_chunk_max_size(s->nraw), written = 0;
    uint8_t *enc = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!enc) return STRATA_ENOMEM;
    int rc = tsdb_chunk_encode(s->raw, s->nraw, enc, cap, &written);
    hchunk_t *c = rc ? NULL : malloc(sizeof *c + written);
    hchunk_t **nc = c ? realloc(s->chunks, (s->nchunks + 1) * sizeof *nc) : NULL;
    if (!rc && (!c || !nc)) rc = STRATA_ENOMEM;
    if (rc) { free(c); if (enc != stackbuf) free(enc); return rc; }
    c->len = (uint32_t)written;
    c->n = s->nraw;
    c->mint = s->raw[0].t;
    c->maxt = s->raw[s->nraw - 1].t;
    memcpy(c->data, enc, written);
    if (enc != stackbuf) free(enc);
    s->chunks = nc;
    s->chunks[s->nchunks++] = c;
    /* the open buffer starts small again: most series are idle between scrapes */
    db->head_bytes += sizeof *c + written + sizeof(void *) - (uint64_t)s->capraw * sizeof(tsdb_sample_t);
    free(s->raw);
    s->raw = NULL;
    s->nraw = s->capraw = 0;
    return 0;
}

/* Merges the trailing small chunks (sealed open buffers) into one chunk once
 * they hold a full chunk's worth: small chunks keep the open buffer short
 * (raw samples cost 16 bytes each), full ones compress better. */
static int series_merge_small(tsdb_t *db, hseries_t *s)
{
    uint32_t k = s->nchunks, total = 0;
    while (k > 0 && s->chunks[k - 1]->n < TSDB_HEAD_CHUNK_SAMPLES && total + s->chunks[k - 1]->n <= TSDB_HEAD_MAX_CHUNK) {
        total += s->chunks[k - 1]->n;
        k--;
    }
    if (s->nchunks - k < 2 || total < TSDB_HEAD_CHUNK_SAMPLES) return 0;
    tsdb_sample_t buf[TSDB_HEAD_MAX_CHUNK];
    size_t n = 0;
    for (uint32_t i = k; i < s->nchunks; i++) {
        size_t got = 0;
        int rc = tsdb_chunk_decode(s->chunks[i]->data, s->chunks[i]->len, buf + n, TSDB_HEAD_MAX_CHUNK - n, &got);
        if (rc) return rc;
        n += got;
    }
    uint8_t enc[8192];
    size_t cap = tsdb_chunk_max_size(n), written = 0;
    if (cap > sizeof enc) return 0;  /* keep them small rather than fail */
    int rc = tsdb_chunk_encode(buf, n, enc, cap, &written);
    if (rc) return rc;
    hchunk_t *c = malloc(sizeof *c + written);
    if (!c) return STRATA_ENOMEM;
    c->len = (uint32_t)written;
    c->n = (uint32_t)n;
    c->mint = buf[0].t;
    c->maxt = buf[n - 1].t;
    memcpy(c->data, enc, written);
    for (uint32_t i = k; i < s->nchunks; i++) {
        db->head_bytes -= sizeof(hchunk_t) + s->chunks[i]->len + sizeof(void *);
        free(s->chunks[i]);
    }
    s->chunks[k] = c;
    s->nchunks = k + 1;
    db->head_bytes += sizeof *c + written + sizeof(void *);
    return 0;
}

/* Appends an in-order sample (t above everything in raw and chunks). */
static int series_push(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    if (s->nraw == s->capraw) {
        uint16_t nc = s->capraw ? (uint16_t)(s->capraw * 2) : 1;
        tsdb_sample_t *nr = realloc(s->raw, nc * sizeof *nr);
        if (!nr) return STRATA_ENOMEM;
        db->head_bytes += (uint64_t)(nc - s->capraw) * sizeof *nr;
        s->raw = nr;
        s->capraw = nc;
    }
    s->raw[s->nraw++] = (tsdb_sample_t){ t, v };
    db->head_samples++;
    if (s->nraw < TSDB_HEAD_OPEN_SAMPLES) return 0;
    int rc = series_seal(db, s);
    return rc ? rc : series_merge_small(db, s);
}

static int find_in(const tsdb_sample_t *a, size_t n, int64_t t, double *v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid].t < t) lo = mid + 1; else hi = mid;
    }
    if (lo < n && a[lo].t == t) { if (v) *v = a[lo].v; return 1; }
    return 0;
}

/* 1 when the series holds a sample at t (its value in *v). */
static int series_find(const hseries_t *s, int64_t t, double *v)
{
    if (find_in(s->raw, s->nraw, t, v) || find_in(s->ooo, s->nooo, t, v)) return 1;
    for (uint32_t i = 0; i < s->nchunks; i++) {
        const hchunk_t *c = s->chunks[i];
        if (t < c->mint || t > c->maxt) continue;
        tsdb_sample_t buf[TSDB_HEAD_MAX_CHUNK];
        size_t n = 0;
        if (tsdb_chunk_decode(c->data, c->len, buf, sizeof buf / sizeof *buf, &n) != 0) return 0;
        return find_in(buf, n, t, v);
    }
    return 0;
}

static int series_insert_ooo(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    if (s->nooo == UINT32_MAX / 2) return STRATA_ELIMIT;
    if (s->nooo == s->capooo) {
        uint32_t nc = s->capooo ? s->capooo * 2u : 4u;
        tsdb_sample_t *no = realloc(s->ooo, (size_t)nc * sizeof *no);
        if (!no) return STRATA_ENOMEM;
        db->head_bytes += (uint64_t)(nc - s->capooo) * sizeof *no;
        s->ooo = no;
        s->capooo = nc;
    }
    size_t lo = 0, hi = s->nooo;
    while (lo < hi) { size_t mid = (lo + hi) / 2; if (s->ooo[mid].t < t) lo = mid + 1; else hi = mid; }
    memmove(s->ooo + lo + 1, s->ooo + lo, (s->nooo - lo) * sizeof *s->ooo);
    s->ooo[lo] = (tsdb_sample_t){ t, v };
    s->nooo++;
    db->head_samples++;
    return 0;
}

/* Makes one accepted sample visible; a sample already there is skipped
 * (a concurrent batch or the WAL replay got there first). */
static int series_add(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    int rc, empty = s->nraw == 0 && s->nchunks == 0 && s->nooo == 0;
    if (s->maxt == INT64_MIN || t > s->maxt) {
        rc = series_push(db, s, t, v);
        if (!rc) s->maxt = t;
    } else {
        if (series_find(s, t, NULL)) return 0;
        rc = series_insert_ooo(db, s, t, v);
    }
    if (!rc) {
        if (empty) db->head_series++;
        if (t < db->head_mint) db->head_mint = t;
        if (t > db->head_maxt) db->head_maxt = t;
    }
    return rc;
}

static int grow_samples(tsdb_sample_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    tsdb_sample_t *nb = realloc(*buf, nc * sizeof *nb);
    if (!nb) return STRATA_ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

/* Appends the series' samples in [mint, maxt], ascending, to *buf. */
static int series_read(const hseries_t *s, int64_t mint, int64_t maxt, tsdb_sample_t **buf,
                       size_t *n, size_t *cap)
{
    size_t base = *n;
    for (uint32_t i = 0; i < s->nchunks; i++) {
        const hchunk_t *c = s->chunks[i];
        if (c->maxt < mint || c->mint > maxt) continue;
        if (grow_samples(buf, cap, *n + c->n)) return STRATA_ENOMEM;
        size_t got = 0;
        int rc = tsdb_chunk_decode(c->data, c->len, *buf + *n, c->n, &got);
        if (rc) return rc;
        tsdb_sample_t *d = *buf + *n;
        size_t w = 0;
        for (size_t j = 0; j < got; j++) if (d[j].t >= mint && d[j].t <= maxt) d[w++] = d[j];
        *n += w;
    }
    if (grow_samples(buf, cap, *n + s->nraw + s->nooo)) return STRATA_ENOMEM;
    for (uint16_t j = 0; j < s->nraw; j++)
        if (s->raw[j].t >= mint && s->raw[j].t <= maxt) (*buf)[(*n)++] = s->raw[j];
    size_t nin = *n - base, nooo = 0;
    tsdb_sample_t *o = *buf + *n;  /* room reserved above */
    for (uint32_t j = 0; j < s->nooo; j++)
        if (s->ooo[j].t >= mint && s->ooo[j].t <= maxt) o[nooo++] = s->ooo[j];
    if (!nooo) return 0;
    /* merge backwards in place: in-order part [base, base+nin), ooo after it */
    tsdb_sample_t *tmp = malloc(nooo * sizeof *tmp);
    if (!tmp) return STRATA_ENOMEM;
    memcpy(tmp, o, nooo * sizeof *tmp);
    tsdb_sample_t *a = *buf + base;
    size_t i = nin, j = nooo, k = nin + nooo;
    while (j > 0) {
        if (i > 0 && a[i - 1].t > tmp[j - 1].t) a[--k] = a[--i];
        else a[--k] = tmp[--j];
    }
    free(tmp);
    *n += nooo;
    return 0;
}

/* ---- series table ------------------------------------------------------------- */

/* The series table is keyed by a hash of the label strings as the caller
 * passes them (names and values, in order), not of their symbol ids: a known
 * series is then found with one pass over its bytes and one comparison per
 * label, without interning (hash, probe and compare per string) first.  The
 * hash reads 8 bytes at a time because FNV's byte-serial multiply chain was
 * a visible share of ingest CPU. */
static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
    h ^= w * UINT64_C(0x9e3779b97f4a7c15);
    h = (h << 31) | (h >> 33);
    return h * UINT64_C(0xbf58476d1ce4e5b9);
}

static inline uint64_t load64(const char *s) { uint64_t w; memcpy(&w, s, 8); return w; }

/* The n < 8 bytes at s as one word, with overlapping loads (no byte loop);
 * for a given n, different bytes give different words. */
static inline uint64_t load_short(const char *s, size_t n)
{
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        return a | (uint64_t)b << 32;
    }
    if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2);
        memcpy(&b, s + n - 2, 2);
        return a | (uint64_t)b << 16;
    }
    return n ? (unsigned char)s[0] : 0;
}

static inline uint64_t hash_str(uint64_t h, const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) h = hash_word(h, load64(s + i));
    uint64_t w = n >= 8 ? (i < n ? load64(s + n - 8) : 0) : load_short(s, n);
    /* the length ends every string, so "ab","c" and "a","bc" differ */
    return hash_word(hash_word(h, w), n);
}

/* a[0..n) == b[0..n), inline: label strings are short and strcmp's call
 * and setup cost more than the comparison. */
static inline int bytes_eq(const char *a, const char *b, size_t n)
{
    if (n < 8) return load_short(a, n) == load_short(b, n);
    for (size_t i = 0; i + 8 <= n; i += 8)
        if (load64(a + i) != load64(b + i)) return 0;
    return load64(a + n - 8) == load64(b + n - 8);
}

/* Hash of the label set; lens gets the 2n string lengths for smap_find. */
static uint64_t label_set_hash(const tsdb_label_t *labels, size_t n, size_t *lens)
{
    uint64_t h = UINT64_C(0x5eed) ^ n;
    for (size_t i = 0; i < n; i++) {
        lens[2 * i] = strlen(labels[i].name);
        lens[2 * i + 1] = strlen(labels[i].value);
        h = hash_str(hash_str(h, labels[i].name, lens[2 * i]), labels[i].value, lens[2 * i + 1]);
    }
    h ^= h >> 33; h *= UINT64_C(0xff51afd7ed558ccd); h ^= h >> 33;
    return h;
}

/* A slot keeps the hash's high half beside the ref, so probing past other
 * series does not load them (each load is a cache miss at ingest rates). */
static inline uint64_t smap_slot(const hseries_t *s) { return (s->hash >> 32 << 32) | ((uint64_t)s->ref + 1); }

static hseries_t *smap_find(const tsdb_t *db, const tsdb_label_t *labels, const size_t *lens, size_t n,
                            uint64_t h)
{
    if (!db->smap_slots) return NULL;
    size_t mask = db->smap_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t v = db->smap[i];
        if (!v) return NULL;
        if (v >> 32 != h >> 32) continue;
        hseries_t *s = db->series[(uint32_t)v - 1];
        if (s->hash != h || s->nlabels != n) continue;
        size_t k = 0;
        for (; k < 2 * n; k++) {
            uint32_t sym = s->labels[k];
            const char *in = k & 1 ? labels[k / 2].value : labels[k / 2].name;
            if (tsdb_symtab_len(&db->syms, sym) != lens[k] ||
                !bytes_eq(tsdb_symtab_str(&db->syms, sym), in, lens[k]))
                break;
        }
        if (k == 2 * n) return s;
    }
}

static int smap_insert(tsdb_t *db, hseries_t *s)
{
    if ((db->smap_n + 1) * 4 >= db->smap_slots * 3) {
        size_t ns = db->smap_slots ? db->smap_slots * 2 : 1024, mask = ns - 1;
        uint64_t *nm = calloc(ns, sizeof *nm);
        if (!nm) return STRATA_ENOMEM;
        for (size_t j = 0; j < db->smap_slots; j++) {
            uint64_t v = db->smap[j];
            if (!v) continue;
            size_t i = db->series[(uint32_t)v - 1]->hash & mask;
            while (nm[i]) i = (i + 1) & mask;
            nm[i] = v;
        }
        free(db->smap);
        db->smap = nm;
        db->smap_slots = ns;
    }
    size_t mask = db->smap_slots - 1, i = s->hash & mask;
    while (db->smap[i]) i = (i + 1) & mask;
    db->smap[i] = smap_slot(s);
    db->smap_n++;
    return 0;
}

/* Looks the label set up without creating anything: NULL when unknown.
 * h and lens from label_set_hash(labels, n, lens). */
static hseries_t *series_lookup(tsdb_t *db, const tsdb_label_t *labels, const size_t *lens, size_t n,
                                uint64_t h)
{
    return smap_find(db, labels, lens, n, h);
}

/* Prefetches what smap_find(h) will read.  stage 0: the slot; stage 1: the
 * series the slot names; stage 2: its label strings, which the comparison
 * reads (each stage expects the previous one's lines in cache). */
static inline void smap_prefetch(const tsdb_t *db, uint64_t h, int stage)
{
    if (!db->smap_slots) return;
    const uint64_t *slot = &db->smap[h & (db->smap_slots - 1)];
    if (stage == 0) { __builtin_prefetch(slot); return; }
    uint64_t v = *slot;
    if (!v || v >> 32 != h >> 32) return;
    const hseries_t *s = db->series[(uint32_t)v - 1];
    if (stage == 1) {
        /* the header, then the label ids, which start on the next line */
        __builtin_prefetch(s);
        __builtin_prefetch((const char *)s + 64);
        __builtin_prefetch((const char *)s + 128);
        return;
    }
    for (uint32_t k = 0; k < 2u * s->nlabels; k++) __builtin_prefetch(tsdb_symtab_str(&db->syms, s->labels[k]));
}

/* Creates a series with ref (UINT32_MAX: the next free one); h is
 * label_set_hash(labels, n). head_lock held. */
static int series_create(tsdb_t *db, const tsdb_label_t *labels, size_t n, uint64_t h, uint32_t ref,
                         hseries_t **out)
{
    if (n == 0 || n > UINT16_MAX) return STRATA_EINVAL;
    hseries_t *s = calloc(1, series_size((uint16_t)n));
    if (!s) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = tsdb_symtab_intern(&db->syms, labels[i].name, &s->labels[2 * i]);
        if (!rc) rc = tsdb_symtab_intern(&db->syms, labels[i].value, &s->labels[2 * i + 1]);
        if (rc) { free(s); return rc; }
    }
    if (ref == UINT32_MAX) ref = db->next_ref;
    if (ref >= UINT32_MAX - 1) { free(s); return STRATA_ELIMIT; }
    if (ref >= db->series_cap) {
        size_t nc = db->series_cap ? db->series_cap : 1024;
        while (nc <= ref) nc *= 2;
        hseries_t **ns = realloc(db->series, nc * sizeof *ns);
        if (!ns) { free(s); return STRATA_ENOMEM; }
        memset(ns + db->series_cap, 0, (nc - db->series_cap) * sizeof *ns);
        db->head_bytes += (nc - db->series_cap) * sizeof *ns;
        db->series = ns;
        db->series_cap = nc;
    }
    s->ref = ref;
    s->nlabels = (uint16_t)n;
    s->maxt = INT64_MIN;
    s->hash = h;
    db->series[ref] = s;
    int rc = smap_insert(db, s);
    for (size_t i = 0; !rc && i < n; i++) rc = tsdb_head_index_add(&db->hidx, s->labels[2 * i], s->labels[2 * i + 1], ref);
    if (rc) { db->series[ref] = NULL; free(s); return rc; }  /* a dead smap entry cannot happen: only ENOMEM after insert */
    if (ref >= db->next_ref) db->next_ref = ref + 1;
    db->head_bytes += series_size((uint16_t)n);
    *out = s;
    return 0;
}

/* Drops series without samples and rebuilds the hash table and postings. */
static int head_gc(tsdb_t *db)
{
    free(db->smap);
    db->smap = NULL;
    db->smap_slots = db->smap_n = 0;
    tsdb_head_index_free(&db->hidx);
    tsdb_head_index_init(&db->hidx);
    int rc = 0;
    for (uint32_t r = 0; r < db->next_ref; r++) {
        hseries_t *s = db->series[r];
        if (!s) continue;
        if (!s->nraw && !s->nchunks && !s->nooo) {
            db->head_bytes -= series_size(s->nlabels);
            free(s->raw); free(s->ooo); free(s->chunks);
            free(s);
            db->series[r] = NULL;
            continue;
        }
        if (!rc) rc = smap_insert(db, s);
        for (uint16_t i = 0; !rc && i < s->nlabels; i++)
            rc = tsdb_head_index_add(&db->hidx, s->labels[2 * i], s->labels[2 * i + 1], r);
    }
    return rc;
}

/* ---- WAL plumbing ------------------------------------------------------------ */

static void fsync_trampoline(double seconds, void *ctx)
{
    tsdb_t *db = ctx;
    atomic_fetch_add(&db->wal_fsyncs, 1);
    pthread_mutex_lock(&db->obs_mu);
    db->fsync_seconds += seconds;
    tsdb_fsync_observer_fn fn = db->obs_fn;
    void *octx = db->obs_ctx;
    pthread_mutex_unlock(&db->obs_mu);
    if (fn) fn(seconds, octx);
}

static hseries_t *replay_series(tsdb_t *db, uint64_t ref)
{
    if (ref < db->next_ref && db->series[ref]) return db->series[ref];
    for (size_t i = 0; i < db->nalias; i++)
        if (db->alias[i].from == ref) return db->series[db->alias[i].to];
    return NULL;
}

static int replay_on_series(void *ctx, uint64_t ref, const tsdb_label_t *labels, size_t n)
{
    tsdb_t *db = ctx;
    if (n == 0 || n > 4096) return 0;  /* never written by tsdb_append */
    size_t lens[2 * n];
    uint64_t h = label_set_hash(labels, n, lens);
    hseries_t *s = series_lookup(db, labels, lens, n, h);
    int rc = 0;
    if (!s && ref < UINT32_MAX - 1 && (ref >= db->series_cap || !db->series[ref]))
        rc = series_create(db, labels, n, h, (uint32_t)ref, &s);
    else if (!s)
        rc = series_create(db, labels, n, h, UINT32_MAX, &s);
    if (rc) return rc;
    s->logged = 1;
    if (s->ref != ref) {
        /* the same label set under another ref (recreated after a cut) */
        for (size_t i = 0; i < db->nalias; i++)
            if (db->alias[i].from == ref) { db->alias[i].to = s->ref; return 0; }
        if (db->nalias == db->alias_cap) {
            size_t nc = db->alias_cap ? db->alias_cap * 2 : 16;
            void *na = realloc(db->alias, nc * sizeof *db->alias);
            if (!na) return STRATA_ENOMEM;
            db->alias = na;
            db->alias_cap = nc;
        }
        db->alias[db->nalias].from = ref;
        db->alias[db->nalias++].to = s->ref;
    }
    return 0;
}

static int replay_on_samples(void *ctx, const tsdb_wal_sample_t *smp, size_t n)
{
    tsdb_t *db = ctx;
    for (size_t i = 0; i < n; i++) {
        hseries_t *s = replay_series(db, smp[i].ref);
        if (!s) continue;  /* its series record was lost with a torn segment */
        int rc = series_add(db, s, smp[i].t, smp[i].v);
        if (rc) return rc;
    }
    return 0;
}

/* ---- blocks list ------------------------------------------------------------------ */

/* Drops a reference; the last one closes the block and removes or sets aside its dir. */
static void block_unref_locked(tsdb_t *db, tsdb_block_t *b)
{
    if (--b->refs > 0) return;
    char *path = strdup(b->path);
    char id[40];
    memcpy(id, b->id, sizeof id);
    int corrupt = b->corrupt, dropped = b->dropped;
    tsdb_block_close(b);
    if (!path) return;
    if (corrupt) {
        mkdir(db->corrupt_dir, 0755);
        size_t n = strlen(db->corrupt_dir) + strlen(id) + 16;
        char *dst = malloc(n);
        if (dst) {
            snprintf(dst, n, "%s/%s", db->corrupt_dir, id);
            if (rename(path, dst) != 0)
                strata_error("cannot move corrupt block aside", "block=%s errno=%d", id, errno);
            free(dst);
        }
    } else if (dropped) {
        tsdb_rm_tree(path);
    }
    free(path);
}

static void block_unref(tsdb_t *db, tsdb_block_t *b)
{
    pthread_mutex_lock(&db->blocks_mu);
    block_unref_locked(db, b);
    pthread_mutex_unlock(&db->blocks_mu);
}

static void list_remove_locked(tsdb_t *db, tsdb_block_t *b)
{
    for (size_t i = 0; i < db->nblocks; i++) {
        if (db->blocks[i] != b) continue;
        memmove(db->blocks + i, db->blocks + i + 1, (db->nblocks - i - 1) * sizeof *db->blocks);
        db->nblocks--;
        block_unref_locked(db, b);
        return;
    }
}

static int list_add_locked(tsdb_t *db, tsdb_block_t *b)
{
    if (db->nblocks == db->blocks_cap) {
        size_t nc = db->blocks_cap ? db->blocks_cap * 2 : 16;
        tsdb_block_t **nb = realloc(db->blocks, nc * sizeof *nb);
        if (!nb) return STRATA_ENOMEM;
        db->blocks = nb;
        db->blocks_cap = nc;
    }
    /* kept sorted by (mint, id) so merges prefer the newer block on ties */
    size_t i = db->nblocks;
    while (i > 0 && (db->blocks[i - 1]->mint > b->mint ||
                     (db->blocks[i - 1]->mint == b->mint && strcmp(db->blocks[i - 1]->id, b->id) > 0)))
        i--;
    memmove(db->blocks + i + 1, db->blocks + i, (db->nblocks - i) * sizeof *db->blocks);
    db->blocks[i] = b;
    db->nblocks++;
    b->refs = 1;
    return 0;
}

static void block_set_corrupt(tsdb_t *db, tsdb_block_t *b, int err)
{
    pthread_mutex_lock(&db->blocks_mu);
    if (!b->corrupt) {
        b->corrupt = 1;
        atomic_fetch_add(&db->blocks_corrupt, 1);
        strata_error("block corrupt, setting it aside", "block=%s err=\"%s\"", b->id, strata_strerror(err));
        list_remove_locked(db, b);
    }
    pthread_mutex_unlock(&db->blocks_mu);
}

/* Snapshot of the live blocks overlapping [mint, maxt], each referenced. */
static int blocks_snapshot(tsdb_t *db, int64_t mint, int64_t maxt, tsdb_block_t ***out, size_t *n)
{
    pthread_mutex_lock(&db->blocks_mu);
    tsdb_block_t **arr = malloc((db->nblocks + 1) * sizeof *arr);
    size_t k = 0;
    if (arr)
        for (size_t i = 0; i < db->nblocks; i++) {
            tsdb_block_t *b = db->blocks[i];
            if (b->maxt < mint || b->mint > maxt) continue;
            b->refs++;
            arr[k++] = b;
        }
    pthread_mutex_unlock(&db->blocks_mu);
    if (!arr) return STRATA_ENOMEM;
    *out = arr;
    *n = k;
    return 0;
}

/* ---- series sets ---------------------------------------------------------------- */

typedef struct sel_entry {
    const uint32_t *pairs;
    uint32_t nlabels;
    int32_t src;              /* -1: head, else index into set->blks */
    uint32_t id;              /* head ref or block-local series */
    tsdb_sample_t *hs;        /* head samples copied at select time */
    uint32_t nhs;
    int sure;                 /* block: a chunk boundary (a real sample) lies in range */
} sel_entry_t;

struct tsdb_series_set {
    tsdb_t *db;
    int64_t mint, maxt;
    tsdb_block_t **blks;
    size_t nblks;
    sel_entry_t *e;
    size_t ne, ecap;
    size_t gstart, gend;
    int lazy_head;            /* head samples read at next() (cut: appends are quiesced) */
    strata_arena_t *arena;
    tsdb_label_t *labels;
    size_t labels_cap;
    tsdb_sample_t *samples, *tmp, *scratch;
    size_t ns, samples_cap, tmp_cap, nscratch, scratch_cap;
    int err, loaded;          /* the current group's samples: read on demand */
    tsdb_rollup_point_t *roll, *rtmp;
    size_t nroll, roll_cap, nrtmp, rtmp_cap;
    tsdb_page_cache_t pc;
};

static inline const char *entry_str(const tsdb_series_set_t *set, const sel_entry_t *e, uint32_t sym)
{
    return e->src < 0 ? tsdb_symtab_str(&set->db->syms, sym) : set->blks[e->src]->syms[sym];
}

static int entry_cmp(const tsdb_series_set_t *set, const sel_entry_t *a, const sel_entry_t *b)
{
    for (uint32_t i = 0; i < a->nlabels && i < b->nlabels; i++) {
        int c = strcmp(entry_str(set, a, a->pairs[2 * i]), entry_str(set, b, b->pairs[2 * i]));
        if (c) return c;
        c = strcmp(entry_str(set, a, a->pairs[2 * i + 1]), entry_str(set, b, b->pairs[2 * i + 1]));
        if (c) return c;
    }
    return a->nlabels < b->nlabels ? -1 : a->nlabels > b->nlabels;
}

static int entry_qsort_cmp2(const tsdb_series_set_t *set, const sel_entry_t *a, const sel_entry_t *b)
{
    int c = entry_cmp(set, a, b);
    if (c) return c;
    /* blocks (oldest first) before the head, so later sources win ties */
    int64_t sa = a->src < 0 ? INT32_MAX : a->src, sb = b->src < 0 ? INT32_MAX : b->src;
    return sa < sb ? -1 : sa > sb;
}

static _Thread_local const tsdb_series_set_t *sort_set;
static int entry_qsort_cmp(const void *x, const void *y)
{
    return entry_qsort_cmp2(sort_set, x, y);
}

static int set_push(tsdb_series_set_t *set, sel_entry_t e)
{
    if (set->ne == set->ecap) {
        size_t nc = set->ecap ? set->ecap * 2 : 64;
        sel_entry_t *ne = realloc(set->e, nc * sizeof *ne);
        if (!ne) return STRATA_ENOMEM;
        set->e = ne;
        set->ecap = nc;
    }
    set->e[set->ne++] = e;
    return 0;
}

void tsdb_series_set_stream(tsdb_series_set_t *set)
{
    if (set) set->pc.stream = 1;
}

void tsdb_series_set_free(tsdb_series_set_t *set)
{
    if (!set) return;
    for (size_t i = 0; i < set->nblks; i++) block_unref(set->db, set->blks[i]);
    free(set->blks);
    free(set->e);
    strata_arena_free(set->arena);
    free(set->labels);
    free(set->samples);
    free(set->tmp);
    free(set->scratch);
    free(set->roll);
    free(set->rtmp);
    tsdb_page_cache_free(&set->pc);
    free(set);
}

static const tsdb_index_ops_t head_index_ops;

/* Sorts the entries by label set, then source.  A block's entries come in
 * label order already (its series are stored so and postings are sorted), so
 * only the head's (e[0..nhead)) are sorted, and the runs are merged pairwise:
 * n log(runs) label comparisons instead of n log n, which showed up as a
 * quarter of a 30-day report's time. */
static int sort_entries(tsdb_series_set_t *set, size_t nhead, size_t *run, size_t nruns)
{
    sort_set = set;
    if (nhead > 1) qsort(set->e, nhead, sizeof *set->e, entry_qsort_cmp);
    sort_set = NULL;
    /* runs: the head, then each block's (run[k]: its start) */
    size_t *off = malloc((nruns + 2) * sizeof *off), n = 0;
    if (!off) return STRATA_ENOMEM;
    if (nhead) off[n++] = 0;
    for (size_t k = 0; k < nruns; k++)
        if (run[k] < (k + 1 < nruns ? run[k + 1] : set->ne)) off[n++] = run[k];
    off[n] = set->ne;
    sel_entry_t *a = set->e, *tmp = n > 1 ? malloc(set->ne * sizeof *tmp) : NULL;
    if (n > 1 && !tmp) { free(off); return STRATA_ENOMEM; }
    while (n > 1) {
        size_t w = 0;
        for (size_t r = 0; r < n; r += 2) {
            size_t i = off[r], mid = off[r + 1], j = mid, end = r + 1 < n ? off[r + 2] : mid, o = i;
            while (i < mid && j < end)
                tmp[o++] = entry_qsort_cmp2(set, &a[j], &a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid) tmp[o++] = a[i++];
            while (j < end) tmp[o++] = a[j++];
            off[w++] = off[r];
        }
        off[w] = off[n];
        n = w;
        sel_entry_t *x = a;
        a = tmp;
        tmp = x;
    }
    if (a != set->e) {
        memcpy(set->e, a, set->ne * sizeof *a);
        tmp = a;
    }
    free(tmp);
    free(off);
    return 0;
}

/* Builds a set over the head (with_head) and the given blocks (references
 * taken over).  cm == NULL selects every series. */
static int set_build(tsdb_t *db, const tsdb_cmatcher_t *cm, size_t ncm, int with_head, int lazy_head,
                     tsdb_block_t **blks, size_t nblks, int snap_blocks, int64_t mint, int64_t maxt,
                     tsdb_series_set_t **out)
{
    tsdb_series_set_t *set = calloc(1, sizeof *set);
    if (!set) {
        for (size_t i = 0; i < nblks; i++) block_unref(db, blks[i]);
        free(blks);
        return STRATA_ENOMEM;
    }
    set->db = db;
    set->mint = mint;
    set->maxt = maxt;
    set->blks = blks;
    set->nblks = nblks;
    set->lazy_head = lazy_head;
    set->arena = strata_arena_new(256 * 1024);
    int rc = set->arena ? 0 : STRATA_ENOMEM;
    uint32_t *ids = NULL;
    size_t nids = 0;
    if (!rc && with_head) {
        pthread_rwlock_rdlock(&db->head_lock);
        if (cm) rc = tsdb_index_select(&head_index_ops, db, cm, ncm, &ids, &nids);
        for (uint32_t r = 0; !rc && r < (cm ? nids : db->next_ref); r++) {
            hseries_t *s = db->series[cm ? ids[r] : r];
            if (!s) continue;
            sel_entry_t e = { .src = -1, .id = s->ref, .nlabels = s->nlabels };
            if (lazy_head) {
                e.pairs = s->labels;
            } else {
                size_t n = 0;
                rc = series_read(s, mint, maxt, &set->scratch, &n, &set->scratch_cap);
                const tsdb_sample_t *buf = set->scratch;
                if (!rc && n) {
                    uint32_t *p = strata_arena_alloc(set->arena, s->nlabels * 2u * sizeof *p);
                    e.hs = strata_arena_alloc(set->arena, n * sizeof *buf);
                    if (!p || !e.hs) rc = STRATA_ENOMEM;
                    else {
                        memcpy(p, s->labels, s->nlabels * 2u * sizeof *p);
                        memcpy(e.hs, buf, n * sizeof *buf);
                        e.pairs = p;
                        e.nhs = (uint32_t)n;
                    }
                }
                if (rc || !n) continue;
            }
            rc = set_push(set, e);
        }
        pthread_rwlock_unlock(&db->head_lock);
        free(ids);
        ids = NULL;
    }
    size_t nhead = set->ne, nruns = 0, *run = NULL;
    /* Blocks are looked at after the head: a cut in between moves samples
     * into a block this snapshot then sees (and the merge deduplicates),
     * instead of hiding them from both. */
    if (!rc && snap_blocks && (rc = blocks_snapshot(db, mint, maxt, &set->blks, &set->nblks)) == 0) {
        blks = set->blks;
        nblks = set->nblks;
    }
    if (!rc && !(run = malloc((nblks + 2) * sizeof *run))) rc = STRATA_ENOMEM;
    for (size_t b = 0; !rc && b < nblks; b++) {
        tsdb_block_t *blk = blks[b];
        run[nruns++] = set->ne;
        nids = 0;
        if (cm) rc = tsdb_index_select(&tsdb_block_index_ops, blk, cm, ncm, &ids, &nids);
        for (uint32_t i = 0; !rc && i < (cm ? nids : blk->nseries); i++) {
            uint32_t id = cm ? ids[i] : i;
            const tsdb_block_series_t *bs = &blk->series[id];
            /* A chunk's mint and maxt are sample times: one inside the range
             * proves a sample there; a chunk straddling the whole range has
             * to be read to know (done by _next, rarely). */
            int any = 0, sure = 0;
            for (uint32_t c = 0; c < bs->nchunks && !sure; c++) {
                const tsdb_block_chunk_t *ch = &bs->chunks[c];
                if (ch->maxt < mint || ch->mint > maxt) continue;
                any = 1;
                sure = ch->mint >= mint || ch->maxt <= maxt;
            }
            if (!any) continue;
            rc = set_push(set, (sel_entry_t){ .pairs = bs->labels, .nlabels = bs->nlabels,
                                              .src = (int32_t)b, .id = id, .sure = sure });
        }
        free(ids);
        ids = NULL;
    }
    if (!rc) rc = sort_entries(set, nhead, run, nruns);
    free(run);
    if (rc) { tsdb_series_set_free(set); return rc; }
    *out = set;
    return 0;
}

/* Merges sorted b into sorted a (both duplicate-free); b wins equal timestamps. */
static int merge_into(tsdb_series_set_t *set, size_t na, const tsdb_sample_t *b, size_t nb)
{
    if (grow_samples(&set->tmp, &set->tmp_cap, na + nb)) return STRATA_ENOMEM;
    size_t i = 0, j = 0, k = 0;
    const tsdb_sample_t *a = set->samples;
    while (i < na || j < nb) {
        if (j == nb || (i < na && a[i].t < b[j].t)) set->tmp[k++] = a[i++];
        else {
            if (i < na && a[i].t == b[j].t) i++;
            set->tmp[k++] = b[j++];
        }
    }
    tsdb_sample_t *t = set->samples; set->samples = set->tmp; set->tmp = t;
    size_t c = set->samples_cap; set->samples_cap = set->tmp_cap; set->tmp_cap = c;
    set->ns = k;
    return 0;
}

/* Adds one source's sorted samples to the group's (the first is copied). */
static int group_add(tsdb_series_set_t *set, const tsdb_sample_t *src, size_t n)
{
    if (set->ns == 0) {
        if (grow_samples(&set->samples, &set->samples_cap, n)) return STRATA_ENOMEM;
        if (n) memcpy(set->samples, src, n * sizeof *src);
        set->ns = n;
        return 0;
    }
    if (!n) return 0;
    /* Blocks come oldest first, so a source usually starts after what the
     * group holds: append, instead of re-merging everything read so far once
     * per block (quadratic over a 7-day range of 2 h blocks). */
    if (src[0].t > set->samples[set->ns - 1].t) {
        if (grow_samples(&set->samples, &set->samples_cap, set->ns + n)) return STRATA_ENOMEM;
        memcpy(set->samples + set->ns, src, n * sizeof *src);
        set->ns += n;
        return 0;
    }
    return merge_into(set, set->ns, src, n);
}

/* Loads and merges the current group's samples, sources in entry order
 * (blocks oldest first, then the head), so later ones win a timestamp. */
static int group_load(tsdb_series_set_t *set)
{
    tsdb_t *db = set->db;
    set->ns = 0;
    for (size_t g = set->gstart; g < set->gend; g++) {
        sel_entry_t *e = &set->e[g];
        int rc = 0;
        set->nscratch = 0;
        if (e->src >= 0) {
            tsdb_block_t *b = set->blks[e->src];
            rc = tsdb_block_series_samples(b, e->id, set->mint, set->maxt, &set->pc, &set->scratch,
                                           &set->nscratch, &set->scratch_cap);
            if (rc == STRATA_ECORRUPT) block_set_corrupt(db, b, rc);
            if (!rc) rc = group_add(set, set->scratch, set->nscratch);
        } else if (set->lazy_head) {
            pthread_rwlock_rdlock(&db->head_lock);
            hseries_t *s = db->series[e->id];
            if (s) rc = series_read(s, set->mint, set->maxt, &set->scratch, &set->nscratch, &set->scratch_cap);
            pthread_rwlock_unlock(&db->head_lock);
            if (!rc) rc = group_add(set, set->scratch, set->nscratch);
        } else {
            rc = group_add(set, e->hs, e->nhs);
        }
        if (rc) return rc;
    }
    return 0;
}

static int group_ensure(tsdb_series_set_t *set)
{
    if (!set->loaded) {
        set->err = group_load(set);
        set->loaded = 1;
    }
    return set->err;
}

int tsdb_series_set_next(tsdb_series_set_t *set)
{
    if (!set) return STRATA_EINVAL;
    for (;;) {
        set->gstart = set->gend;
        if (set->gstart >= set->ne) return 0;
        set->gend = set->gstart + 1;
        while (set->gend < set->ne && entry_cmp(set, &set->e[set->gstart], &set->e[set->gend]) == 0)
            set->gend++;
        set->nroll = 0;
        set->loaded = 0;
        set->err = 0;
        set->ns = 0;
        /* Raw samples are decoded only when asked for (a rollup read does not
         * need them), unless that is the only way to know the group has a
         * sample in range at all. */
        int certain = 0;
        for (size_t g = set->gstart; g < set->gend && !certain; g++) {
            const sel_entry_t *e = &set->e[g];
            certain = e->src >= 0 ? e->sure : !set->lazy_head;
        }
        if (certain) break;
        int rc = group_ensure(set);
        if (rc == STRATA_ENOMEM) return rc;
        if (rc || set->ns) break;
    }
    const sel_entry_t *e = &set->e[set->gstart];
    if (e->nlabels > set->labels_cap) {
        tsdb_label_t *nl = realloc(set->labels, e->nlabels * sizeof *nl);
        if (!nl) return STRATA_ENOMEM;
        set->labels = nl;
        set->labels_cap = e->nlabels;
    }
    for (uint32_t i = 0; i < e->nlabels; i++) {
        set->labels[i].name = entry_str(set, e, e->pairs[2 * i]);
        set->labels[i].value = entry_str(set, e, e->pairs[2 * i + 1]);
    }
    return 1;
}

const tsdb_label_t *tsdb_series_set_labels(tsdb_series_set_t *set, size_t *nlabels)
{
    if (!set || set->gstart >= set->ne) { if (nlabels) *nlabels = 0; return NULL; }
    *nlabels = set->e[set->gstart].nlabels;
    return set->labels;
}

int tsdb_series_set_samples(tsdb_series_set_t *set, const tsdb_sample_t **samples, size_t *n)
{
    if (!set || set->gstart >= set->ne) return STRATA_EINVAL;
    if (group_ensure(set)) { *samples = NULL; *n = 0; return set->err; }
    *samples = set->samples;
    *n = set->ns;
    return 0;
}

/* Appends src points to the output, joining a point with the same
 * interval as the previous one (a source boundary inside an interval) and
 * carrying the counter across the boundary. */
static int rollup_append(tsdb_series_set_t *set, const tsdb_rollup_point_t *p, size_t n)
{
    /* the newest output point holding samples: the counter's baseline */
    const tsdb_rollup_point_t *base = NULL;
    for (size_t k = set->nroll; k > 0 && !base; k--)
        if (set->roll[k - 1].count) base = &set->roll[k - 1];
    int first = 1;  /* later points of this source carry their own baseline */
    for (size_t i = 0; i < n; i++) {
        tsdb_rollup_point_t q = p[i];
        if (q.count && first) {
            if (base) q.increase += tsdb_counter_delta(base->last, q.first);
            first = 0;
        }
        tsdb_rollup_point_t *last = set->nroll ? &set->roll[set->nroll - 1] : NULL;
        if (last && last->t == q.t) {
            tsdb_rollup_join(last, &q);
            continue;
        }
        if (set->nroll == set->roll_cap) {
            size_t nc = set->roll_cap ? set->roll_cap * 2 : 32;
            tsdb_rollup_point_t *nr = realloc(set->roll, nc * sizeof *nr);
            if (!nr) return STRATA_ENOMEM;
            set->roll = nr;
            set->roll_cap = nc;
        }
        set->roll[set->nroll++] = q;
    }
    return 0;
}

int tsdb_series_set_rollups(tsdb_series_set_t *set, int64_t resolution,
                            const tsdb_rollup_point_t **points, size_t *n)
{
    if (!set || set->gstart >= set->ne) return STRATA_EINVAL;
    if (resolution != TSDB_ROLLUP_5M && resolution != TSDB_ROLLUP_1H) return STRATA_EINVAL;
    if (set->loaded && set->err) return set->err;
    set->nroll = 0;
    /* Stored rollups are only exact when the sources do not overlap in time
     * (each sample lives in exactly one of them); otherwise recompute from
     * the merged samples. */
    int overlap = set->lazy_head;  /* (or a version 1 block, whose 1h rollups lack fields) */
    int64_t prev_end = INT64_MIN;
    for (size_t g = set->gstart; g < set->gend && !overlap; g++) {
        const sel_entry_t *e = &set->e[g];
        int64_t a, b;
        if (e->src >= 0) {
            const tsdb_block_series_t *bs = &set->blks[e->src]->series[e->id];
            if (resolution == TSDB_ROLLUP_1H && set->blks[e->src]->version < 2) overlap = 1;
            a = bs->chunks[0].mint;
            b = bs->chunks[bs->nchunks - 1].maxt;
        } else {
            if (!e->nhs) continue;
            a = e->hs[0].t;
            b = e->hs[e->nhs - 1].t;
        }
        if (a <= prev_end) overlap = 1;
        prev_end = b;
    }
    int rc = 0;
    if (overlap && (rc = group_ensure(set)) != 0) return rc;
    if (overlap) {
        set->nrtmp = 0;
        rc = tsdb_rollups_compute(set->samples, set->ns, resolution, &set->rtmp, &set->nrtmp, &set->rtmp_cap);
        if (!rc) rc = rollup_append(set, set->rtmp, set->nrtmp);
    } else {
        for (size_t g = set->gstart; g < set->gend && !rc; g++) {
            const sel_entry_t *e = &set->e[g];
            set->nrtmp = 0;
            if (e->src >= 0) {
                tsdb_block_t *b = set->blks[e->src];
                rc = tsdb_block_series_rollups(b, e->id, resolution, &set->pc, &set->rtmp, &set->nrtmp, &set->rtmp_cap);
                if (rc == STRATA_ECORRUPT) block_set_corrupt(set->db, b, rc);
            } else {
                rc = tsdb_rollups_compute(e->hs, e->nhs, resolution, &set->rtmp, &set->nrtmp, &set->rtmp_cap);
            }
            if (!rc) rc = rollup_append(set, set->rtmp, set->nrtmp);
        }
    }
    if (rc) return rc;
    size_t w = 0;
    for (size_t i = 0; i < set->nroll; i++) {
        const tsdb_rollup_point_t *p = &set->roll[i];
        if (p->t - resolution + 1 >= set->mint && p->t <= set->maxt) set->roll[w++] = *p;
    }
    /* 5m points do not keep the holding-rule fields on disk: none, wherever
     * they came from */
    if (resolution == TSDB_ROLLUP_5M)
        for (size_t i = 0; i < w; i++) {
            tsdb_rollup_point_t *p = &set->roll[i];
            p->stale = 0;
            p->stale_t = p->gap_max = p->zero_lead_end = p->zero_trail_start = 0;
            p->zero_inner_max = p->zero_inner_idle = 0;
            p->hold_sum = p->last_rise = p->inner_increase = 0;
        }
    set->nroll = w;
    *points = set->roll;
    *n = w;
    return 0;
}

/* ---- head index ops ------------------------------------------------------------- */

static int head_each_value(const void *idx, const char *name, tsdb_value_cb cb, void *ctx)
{
    const tsdb_t *db = idx;
    uint32_t ns;
    if (!tsdb_symtab_find(&db->syms, name, &ns)) return 0;
    const struct tsdb_lname *ln = tsdb_head_index_name(&db->hidx, ns);
    if (!ln) return 0;
    for (uint32_t i = 0; i < ln->n; i++) {
        const tsdb_postings_t *p = tsdb_head_index_get(&db->hidx, ns, ln->vals[i]);
        if (!p || !p->n) continue;
        int rc = cb(ctx, tsdb_symtab_str(&db->syms, ln->vals[i]), tsdb_postings_ids(p), p->n);
        if (rc) return rc;
    }
    return 0;
}

static void head_lookup(const void *idx, const char *name, const char *value, const uint32_t **ids, size_t *n)
{
    const tsdb_t *db = idx;
    uint32_t ns, vs;
    *ids = NULL;
    *n = 0;
    if (!tsdb_symtab_find(&db->syms, name, &ns) || !tsdb_symtab_find(&db->syms, value, &vs)) return;
    const tsdb_postings_t *p = tsdb_head_index_get(&db->hidx, ns, vs);
    if (p) { *ids = tsdb_postings_ids(p); *n = p->n; }
}

static const tsdb_index_ops_t head_index_ops = { head_each_value, head_lookup };

int tsdb_select(tsdb_t *db, const tsdb_matcher_t *matchers, size_t nmatchers, int64_t mint,
                int64_t maxt, tsdb_series_set_t **out)
{
    if (!db || !out) return STRATA_EINVAL;
    *out = NULL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    tsdb_cmatcher_t *cm;
    int rc = tsdb_matchers_compile(matchers, nmatchers, &cm);
    if (rc) return rc;
    rc = set_build(db, cm, nmatchers, 1, 0, NULL, 0, 1, mint, maxt, out);
    tsdb_matchers_free(cm, nmatchers);
    return rc;
}

/* ---- append ------------------------------------------------------------------------- */

typedef struct { int64_t t; double v; uint32_t idx; } isample_t;
static int isample_cmp(const void *x, const void *y)
{
    const isample_t *a = x, *b = y;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

int tsdb_append(tsdb_t *db, const tsdb_series_input_t *in, size_t nseries, tsdb_append_result_t *res)
{
    tsdb_append_result_t local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    res->first_rejected_series = SIZE_MAX;
    if (!db || (nseries && !in)) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;

    size_t total = 0;
    for (size_t i = 0; i < nseries; i++) total += in[i].nsamples;
    tsdb_wal_sample_t *acc = malloc((total + 1) * sizeof *acc);
    uint32_t *refs = malloc((nseries + 1) * sizeof *refs);
    uint8_t *log_series = calloc(nseries + 1, 1);
    uint64_t *hashes = malloc((nseries + 1) * sizeof *hashes);
    size_t *lens = NULL, *lens_at = malloc((nseries + 1) * sizeof *lens_at), nstr = 0;
    for (size_t i = 0; i < nseries; i++) nstr += 2 * (in[i].nlabels <= 4096 ? in[i].nlabels : 0);
    lens = malloc((nstr + 1) * sizeof *lens);
    isample_t *srt = NULL;
    size_t srt_cap = 0, nacc = 0, nlog = 0;
    int rc = (!acc || !refs || !log_series || !hashes || !lens || !lens_at) ? STRATA_ENOMEM : 0;
    int replay = atomic_load(&db->replaying);

    /* Hashing needs no lock: done first, it shortens the exclusive section. */
    size_t nvalid = 0;
    for (size_t off = 0; !rc && nvalid < nseries; nvalid++) {
        const tsdb_series_input_t *si = &in[nvalid];
        if (!si->nlabels || !si->labels || si->nlabels > 4096 || (si->nsamples && !si->samples)) break;
        lens_at[nvalid] = off;
        hashes[nvalid] = label_set_hash(si->labels, si->nlabels, lens + off);
        off += 2 * si->nlabels;
    }

    pthread_rwlock_rdlock(&db->gate);
    int locked = !rc;
    if (locked) pthread_rwlock_wrlock(&db->head_lock);
    /* The series of a batch are scattered over the table and the heap: the
     * slots PF_SLOT series ahead and their series PF_SERIES ahead are
     * prefetched so the misses overlap instead of stalling one by one. */
    enum { PF_SLOT = 16, PF_SERIES = 8, PF_STRINGS = 4 };
    for (size_t i = 0; !rc && i < PF_SLOT && i < nvalid; i++) smap_prefetch(db, hashes[i], 0);
    for (size_t i = 0; !rc && i < PF_SERIES && i < nvalid; i++) smap_prefetch(db, hashes[i], 1);
    for (size_t i = 0; !rc && i < PF_STRINGS && i < nvalid; i++) smap_prefetch(db, hashes[i], 2);
    for (size_t i = 0; !rc && i < nseries; i++) {
        const tsdb_series_input_t *si = &in[i];
        if (i >= nvalid) {
            rc = STRATA_EINVAL;
            break;
        }
        if (i + PF_SLOT < nvalid) smap_prefetch(db, hashes[i + PF_SLOT], 0);
        if (i + PF_SERIES < nvalid) smap_prefetch(db, hashes[i + PF_SERIES], 1);
        if (i + PF_STRINGS < nvalid) smap_prefetch(db, hashes[i + PF_STRINGS], 2);
        uint64_t h = hashes[i];
        hseries_t *s = series_lookup(db, si->labels, lens + lens_at[i], si->nlabels, h);
        if (!s) {
            if ((rc = series_create(db, si->labels, si->nlabels, h, UINT32_MAX, &s))) break;
            res->new_series++;
        }
        refs[i] = s->ref;
        if (!s->logged) { log_series[i] = 1; nlog++; }
        if (si->nsamples > srt_cap) {
            isample_t *ns = realloc(srt, si->nsamples * sizeof *ns);
            if (!ns) { rc = STRATA_ENOMEM; break; }
            srt = ns;
            srt_cap = si->nsamples;
        }
        for (size_t k = 0; k < si->nsamples; k++)
            srt[k] = (isample_t){ si->samples[k].t, si->samples[k].v, (uint32_t)k };
        if (si->nsamples > 1) qsort(srt, si->nsamples, sizeof *srt, isample_cmp);
        int64_t vmax = s->maxt;
        int have_prev = 0;
        int64_t pt = 0;
        uint64_t pbits = 0;
        for (size_t k = 0; k < si->nsamples; k++) {
            int64_t t = srt[k].t;
            uint64_t bits = tsdb_dbits(srt[k].v);
            double stored;
            int verdict;  /* 0 accept, 1 duplicate, 2 conflict, 3 too old */
            if (have_prev && t == pt) verdict = bits == pbits ? 1 : 2;
            else if (vmax == INT64_MIN || t > vmax) verdict = 0;
            else if (series_find(s, t, &stored)) verdict = tsdb_dbits(stored) == bits ? 1 : 2, bits = tsdb_dbits(stored);
            else if (!replay && t < vmax && (uint64_t)vmax - (uint64_t)t > (uint64_t)db->opts.ooo_window_ms) verdict = 3;
            else verdict = 0;
            if (verdict == 0) {
                acc[nacc++] = (tsdb_wal_sample_t){ s->ref, t, srt[k].v };
                res->appended++;
                if (vmax == INT64_MIN || t > vmax) vmax = t;
            } else if (verdict == 1) {
                res->duplicates++;
            } else {
                if (verdict == 2) res->conflicting++; else res->too_old++;
                if (res->first_rejected_series == SIZE_MAX) {
                    res->first_rejected_series = i;
                    res->first_rejected_error = verdict == 2 ? STRATA_EDUPTS : STRATA_ETOOOLD;
                }
            }
            if (verdict != 3) { have_prev = 1; pt = t; pbits = bits; }
        }
    }
    if (locked) pthread_rwlock_unlock(&db->head_lock);
    free(srt);

    if (!rc && (nacc || nlog)) {
        /* The WAL record is built and written without the head lock, so
         * concurrent batches overlap here and share an fsync. */
        tsdb_wal_batch_t batch;
        tsdb_wal_batch_init(&batch);
        for (size_t i = 0; !rc && i < nseries; i++)
            if (log_series[i]) rc = tsdb_wal_batch_add_series(&batch, refs[i], in[i].labels, in[i].nlabels);
        if (!rc && nacc) rc = tsdb_wal_batch_add_samples(&batch, acc, nacc);
        if (!rc) rc = tsdb_wal_append(db->wal, &batch);
        tsdb_wal_batch_free(&batch);
        if (!rc) {
            pthread_rwlock_wrlock(&db->head_lock);
            for (size_t i = 0; i < nseries; i++)
                if (log_series[i] && db->series[refs[i]]) db->series[refs[i]]->logged = 1;
            for (size_t k = 0; !rc && k < nacc; k++)
                rc = series_add(db, db->series[acc[k].ref], acc[k].t, acc[k].v);
            pthread_rwlock_unlock(&db->head_lock);
            if (!rc) atomic_fetch_add(&db->samples_appended, nacc);
        }
    }
    pthread_rwlock_unlock(&db->gate);
    free(acc);
    free(refs);
    free(log_series);
    free(hashes);
    free(lens);
    free(lens_at);
    if (rc) {
        size_t nr = res->first_rejected_series;
        int nre = res->first_rejected_error;
        memset(res, 0, sizeof *res);
        res->first_rejected_series = nr;
        res->first_rejected_error = nre;
    }
    return rc;
}

/* ---- cut ---------------------------------------------------------------------------- */

/* Checkpoints the WAL at seg: checkpoint.<seg> holds a SERIES record for
 * every head series; the head's samples are written as ordinary records into
 * segment seg (and later ones), in bounded batches, synced before the
 * checkpoint replaces the older segments.  Keeping the samples out of the
 * checkpoint batch bounds the memory a cut needs (the WAL API takes the
 * checkpoint as one buffer) to the series records.  Replay reads the
 * checkpoint first, so every sample finds its series.
 *
 * Runs without the gate: the head may only have grown since the rotation
 * (samples leave it only in a cut, and cuts are serialised), so the snapshot
 * holds everything of the segments before seg; a sample both in the snapshot
 * and in a record appended after the rotation is replayed once. */
#define CKPT_SAMPLE_BATCH_BYTES (4u << 20)

static int checkpoint_write(tsdb_t *db, uint64_t seg)
{
    tsdb_wal_batch_t ckpt, smp;
    tsdb_wal_batch_init(&ckpt);
    tsdb_wal_batch_init(&smp);
    tsdb_label_t *lab = NULL;
    size_t lab_cap = 0;
    tsdb_sample_t *buf = NULL;
    size_t cap = 0;
    tsdb_wal_sample_t *ws = NULL;
    size_t ws_cap = 0;
    int rc = 0;
    for (uint32_t r = 0; !rc; r++) {
        /* one series at a time, so appends are not held up for the whole snapshot */
        pthread_rwlock_rdlock(&db->head_lock);
        if (r >= db->next_ref) { pthread_rwlock_unlock(&db->head_lock); break; }
        hseries_t *s = db->series[r];
        size_t n = 0;
        if (s && s->nlabels > lab_cap) {
            tsdb_label_t *nl = realloc(lab, s->nlabels * sizeof *nl);
            if (!nl) rc = STRATA_ENOMEM;
            else { lab = nl; lab_cap = s->nlabels; }
        }
        if (s && !rc) {
            for (uint16_t i = 0; i < s->nlabels; i++)
                lab[i] = (tsdb_label_t){ tsdb_symtab_str(&db->syms, s->labels[2 * i]),
                                         tsdb_symtab_str(&db->syms, s->labels[2 * i + 1]) };
            rc = series_read(s, INT64_MIN, INT64_MAX, &buf, &n, &cap);
        }
        uint16_t nl = s ? s->nlabels : 0;
        pthread_rwlock_unlock(&db->head_lock);
        if (!s || rc) continue;
        rc = tsdb_wal_batch_add_series(&ckpt, r, lab, nl);
        if (!rc && n) {
            if (n > ws_cap) {
                tsdb_wal_sample_t *nw = realloc(ws, n * sizeof *nw);
                if (!nw) { rc = STRATA_ENOMEM; break; }
                ws = nw;
                ws_cap = n;
            }
            for (size_t k = 0; k < n; k++) ws[k] = (tsdb_wal_sample_t){ r, buf[k].t, buf[k].v };
            rc = tsdb_wal_batch_add_samples(&smp, ws, n);
        }
        if (!rc && smp.len >= CKPT_SAMPLE_BATCH_BYTES) {
            rc = tsdb_wal_append(db->wal, &smp);
            tsdb_wal_batch_reset(&smp);
        }
    }
    if (!rc && smp.len) rc = tsdb_wal_append(db->wal, &smp);
    if (!rc) rc = tsdb_wal_sync(db->wal);
    if (!rc) rc = tsdb_wal_checkpoint(db->wal, seg, &ckpt);
    tsdb_wal_batch_free(&ckpt);
    tsdb_wal_batch_free(&smp);
    free(lab);
    free(buf);
    free(ws);
    return rc;
}

/* Writes the head samples of [wmin, wmax] into one block and adds it to the
 * block list; written[id] grows by the samples each series gave.  maint_mu held. */
static int cut_window(tsdb_t *db, int64_t wmin, int64_t wmax, uint32_t *written, size_t nwritten)
{
    tsdb_series_set_t *set = NULL;
    tsdb_block_writer_t *w = NULL;
    int rc = set_build(db, NULL, 0, 1, 1, NULL, 0, 0, wmin, wmax, &set);
    if (!rc) rc = tsdb_block_writer_new(db->blocks_dir, 1, &w);
    while (!rc && (rc = tsdb_series_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *smp;
        size_t n;
        rc = tsdb_series_set_samples(set, &smp, &n);
        if (!rc) rc = tsdb_block_writer_add(w, l, nl, smp, n);
        uint32_t id = set->e[set->gstart].id;
        if (id < nwritten) written[id] += (uint32_t)n;
    }
    tsdb_series_set_free(set);
    if (rc) { tsdb_block_writer_abort(w); return rc; }
    char id[40];
    rc = tsdb_block_writer_finish(w, id);
    if (rc == STRATA_ENOTFOUND) return 0;  /* nothing in this window */
    tsdb_block_t *b = NULL;
    if (!rc) rc = tsdb_block_open(db->blocks_dir, id, &b);
    if (!rc) {
        pthread_mutex_lock(&db->blocks_mu);
        rc = list_add_locked(db, b);
        pthread_mutex_unlock(&db->blocks_mu);
        if (rc) tsdb_block_close(b);
        else strata_info("head cut into block", "block=%s mint=%lld maxt=%lld series=%llu samples=%llu",
                         b->id, (long long)b->mint, (long long)b->maxt,
                         (unsigned long long)b->nseries, (unsigned long long)b->nsamples);
    }
    return rc;
}

/* Writes every head sample with t < boundary into blocks, drops them from
 * the head and checkpoints the WAL once.  maint_mu held.
 *
 * A bounded cut writes one block per aligned block_duration window, so a
 * head that fell far behind (a fast backfill) is drained in one pass with
 * one checkpoint, instead of rewriting the rest of the head into the WAL once
 * per window.  tsdb_cut_head (boundary INT64_MAX) writes one block.
 *
 * Appends are quiesced only while the head lets go of what the blocks hold
 * and the WAL rotates, not while the blocks are written: a series keeps its
 * samples below the boundary unless the blocks hold exactly as many of them
 * as the head still does (samples are only ever added, so equal counts mean
 * the same samples).  An out-of-order sample that arrived during the write
 * thus keeps the whole range in the head for the next, overlapping block,
 * which compaction merges. */
static int cut_locked(tsdb_t *db, int64_t boundary)
{
    const int64_t last = boundary == INT64_MAX ? INT64_MAX : boundary - 1;
    const int64_t bd = db->opts.block_duration_ms;
    uint32_t *written = NULL;
    pthread_rwlock_rdlock(&db->head_lock);
    size_t nwritten = db->next_ref;
    int64_t head_mint = db->head_mint;
    pthread_rwlock_unlock(&db->head_lock);
    int rc = 0;
    written = calloc(nwritten + 1, sizeof *written);
    if (!written) rc = STRATA_ENOMEM;
    if (!rc && (boundary == INT64_MAX || head_mint == INT64_MAX)) {
        rc = cut_window(db, INT64_MIN, last, written, nwritten);
    } else if (!rc) {
        /* Samples older than the head's mint may only exist when they arrived
         * after the read above: they stay in the head (counts differ). */
        for (int64_t ws = tsdb_floor_div(head_mint, bd) * bd; !rc && ws < boundary; ws += bd) {
            int64_t we = ws + bd - 1 < last ? ws + bd - 1 : last;
            rc = cut_window(db, ws, we, written, nwritten);
        }
    }
    uint64_t seg = 0;
    if (!rc) {
        /* The block is visible: drop its samples from the head.  Readers in
         * between see both copies, which the merge deduplicates. */
        pthread_rwlock_wrlock(&db->gate);
        pthread_rwlock_wrlock(&db->head_lock);
        tsdb_sample_t *buf = NULL, *lo = NULL;
        size_t cap = 0, locap = 0;
        db->head_mint = INT64_MAX;
        db->head_maxt = INT64_MIN;
        db->head_series = 0;
        uint64_t kept = 0;
        for (uint32_t r = 0; !rc && r < db->next_ref; r++) {
            hseries_t *s = db->series[r];
            if (!s) continue;
            size_t nlo = 0, n = 0;
            if (boundary == INT64_MAX) nlo = series_chunk_samples(s) + s->nraw + s->nooo;
            else rc = series_read(s, INT64_MIN, last, &lo, &nlo, &locap);
            if (!rc && nlo && r < nwritten && written[r] == nlo) {
                if (boundary != INT64_MAX) rc = series_read(s, boundary, INT64_MAX, &buf, &n, &cap);
                if (rc) break;
                db->head_samples -= series_chunk_samples(s);
                series_free_data(db, s);
                for (size_t k = 0; !rc && k < n; k++) rc = series_push(db, s, buf[k].t, buf[k].v);
            } else if (nlo) {
                kept++;
            }
            if (!rc && (s->nraw || s->nchunks || s->nooo)) {
                /* bounds from the chunk headers and buffers: nothing decoded */
                int64_t mn = INT64_MAX, mx = INT64_MIN;
                if (s->nchunks) { mn = s->chunks[0]->mint; mx = s->chunks[s->nchunks - 1]->maxt; }
                if (s->nraw) { if (s->raw[0].t < mn) mn = s->raw[0].t; if (s->raw[s->nraw - 1].t > mx) mx = s->raw[s->nraw - 1].t; }
                if (s->nooo) { if (s->ooo[0].t < mn) mn = s->ooo[0].t; if (s->ooo[s->nooo - 1].t > mx) mx = s->ooo[s->nooo - 1].t; }
                db->head_series++;
                if (mn < db->head_mint) db->head_mint = mn;
                if (mx > db->head_maxt) db->head_maxt = mx;
            }
        }
        if (!rc) rc = head_gc(db);
        pthread_rwlock_unlock(&db->head_lock);
        if (!rc) rc = tsdb_wal_rotate(db->wal, &seg);
        pthread_rwlock_unlock(&db->gate);
        free(buf);
        free(lo);
        if (kept) strata_info("series kept below the cut boundary (out-of-order samples arrived during the cut)",
                              "series=%llu", (unsigned long long)kept);
    }
    free(written);
    if (!rc) rc = checkpoint_write(db, seg);
    if (rc) strata_error("head cut failed", "err=\"%s\"", strata_strerror(rc));
    return rc;
}

int tsdb_cut_head(tsdb_t *db)
{
    if (!db) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    pthread_mutex_lock(&db->maint_mu);
    int rc = cut_locked(db, INT64_MAX);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

/* Cuts aligned block_duration ranges while the head spans more than 1.5 of them. */
static int cut_if_due_locked(tsdb_t *db)
{
    int64_t bd = db->opts.block_duration_ms;
    for (int guard = 0; guard < 16; guard++) {  /* the next pass goes on */
        pthread_rwlock_rdlock(&db->head_lock);
        int64_t mint = db->head_mint, maxt = db->head_maxt;
        pthread_rwlock_unlock(&db->head_lock);
        if (mint == INT64_MAX || maxt - mint <= bd + bd / 2) return 0;
        /* Every window the one-at-a-time rule would cut, in one pass. */
        int64_t boundary = (tsdb_floor_div(mint, bd) + 1) * bd;
        while (maxt - boundary > bd + bd / 2) boundary += bd;
        int rc = cut_locked(db, boundary);
        if (rc) return rc;
    }
    return 0;
}

/* ---- compaction and retention ---------------------------------------------------------- */

/* Merges the given blocks (references held by the caller) into one. */
static int merge_blocks(tsdb_t *db, tsdb_block_t **grp, size_t n)
{
    tsdb_block_t **refs = malloc(n * sizeof *refs);
    if (!refs) return STRATA_ENOMEM;
    uint32_t level = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < n; i++) {
        refs[i] = grp[i];
        grp[i]->refs++;
        if (grp[i]->level > level) level = grp[i]->level;
    }
    pthread_mutex_unlock(&db->blocks_mu);
    tsdb_series_set_t *set = NULL;
    tsdb_block_writer_t *w = NULL;
    int rc = set_build(db, NULL, 0, 0, 0, refs, n, 0, INT64_MIN, INT64_MAX, &set);
    if (!rc) rc = tsdb_block_writer_new(db->blocks_dir, level + 1, &w);
    while (!rc && (rc = tsdb_series_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *smp;
        size_t n;
        rc = tsdb_series_set_samples(set, &smp, &n);
        if (!rc) rc = tsdb_block_writer_add(w, l, nl, smp, n);
    }
    char id[40];
    tsdb_block_t *nb = NULL;
    if (!rc) {
        rc = tsdb_block_writer_finish(w, id);
        w = NULL;
        if (!rc) rc = tsdb_block_open(db->blocks_dir, id, &nb);
    }
    tsdb_block_writer_abort(w);
    if (rc == STRATA_ENOTFOUND) rc = 0;
    /* The new block goes in before the old ones go: a crash in between
     * leaves duplicates, which reads and the next compaction absorb. */
    pthread_mutex_lock(&db->blocks_mu);
    if (!rc && nb) rc = list_add_locked(db, nb);
    if (!rc)
        for (size_t i = 0; i < n; i++) {
            grp[i]->dropped = 1;
            list_remove_locked(db, grp[i]);
        }
    pthread_mutex_unlock(&db->blocks_mu);
    if (!rc && nb)
        strata_info("blocks compacted", "block=%s sources=%zu mint=%lld maxt=%lld", nb->id, n,
                    (long long)nb->mint, (long long)nb->maxt);
    tsdb_series_set_free(set);  /* drops refs[] */
    if (rc) strata_error("compaction failed", "err=\"%s\"", strata_strerror(rc));
    return rc;
}

/* Compaction windows, smallest first: 3 block durations, then 1 day and 7
 * days where they are whole multiples of the one before, none longer than a
 * tenth of the retention (so retention still drops data in small steps).
 * Every block keeps its own index in memory, series labels included, so 30
 * days of 6 h blocks held the labels of each series 120 times. */
static size_t compaction_ranges(const tsdb_t *db, int64_t r[3])
{
    const int64_t day = INT64_C(86400000);
    int64_t cap = db->opts.retention_ms > 0 ? db->opts.retention_ms / 10 : INT64_MAX;
    size_t n = 0;
    r[n++] = 3 * db->opts.block_duration_ms;
    const int64_t more[2] = { day, 7 * day };
    for (size_t k = 0; k < 2; k++)
        if (more[k] > r[n - 1] && more[k] % r[n - 1] == 0 && more[k] <= cap) r[n++] = more[k];
    return n;
}

static int compact_locked(tsdb_t *db)
{
    int64_t ranges[3];
    size_t nranges = compaction_ranges(db, ranges);
    int64_t range = ranges[0];
    for (int guard = 0; guard < 1000; guard++) {
        tsdb_block_t **bl = NULL;
        size_t n = 0;
        int rc = blocks_snapshot(db, INT64_MIN, INT64_MAX, &bl, &n);
        if (rc) return rc;
        size_t gs = 0, ge = 0;
        /* 1: blocks whose time ranges overlap (out-of-order data, crash leftovers) */
        for (size_t i = 0; i < n && ge - gs < 2; i++) {
            int64_t end = bl[i]->maxt;
            size_t j = i + 1;
            while (j < n && bl[j]->mint <= end) { if (bl[j]->maxt > end) end = bl[j]->maxt; j++; }
            if (j - i >= 2) { gs = i; ge = j; }
        }
        /* 2: adjacent blocks inside one aligned window of 3 block durations */
        for (size_t i = 0; i < n && ge - gs < 2; i++) {
            int64_t win = tsdb_floor_div(bl[i]->mint, range);
            if (tsdb_floor_div(bl[i]->maxt, range) != win) continue;
            size_t j = i + 1;
            while (j < n && tsdb_floor_div(bl[j]->mint, range) == win && tsdb_floor_div(bl[j]->maxt, range) == win) j++;
            if (j - i >= 2) { gs = i; ge = j; }
        }
        /* 3: the longer windows, once complete (a block already ends past
         * them), so a growing window is not rewritten at every new block */
        int64_t newest = INT64_MIN;
        for (size_t i = 0; i < n; i++) if (bl[i]->maxt > newest) newest = bl[i]->maxt;
        for (size_t k = 1; k < nranges && ge - gs < 2; k++) {
            for (size_t i = 0; i < n && ge - gs < 2; i++) {
                int64_t win = tsdb_floor_div(bl[i]->mint, ranges[k]);
                if (tsdb_floor_div(bl[i]->maxt, ranges[k]) != win || newest < (win + 1) * ranges[k]) continue;
                size_t j = i + 1;
                while (j < n && tsdb_floor_div(bl[j]->mint, ranges[k]) == win &&
                       tsdb_floor_div(bl[j]->maxt, ranges[k]) == win)
                    j++;
                if (j - i >= 2) { gs = i; ge = j; }
            }
        }
        if (ge - gs >= 2) rc = merge_blocks(db, bl + gs, ge - gs);
        for (size_t i = 0; i < n; i++) block_unref(db, bl[i]);
        free(bl);
        if (rc == STRATA_ECORRUPT) { rc = 0; continue; }  /* that block is set aside now: go on */
        if (rc || ge - gs < 2) return rc;
    }
    return 0;
}

static void retention_locked(tsdb_t *db)
{
    pthread_rwlock_rdlock(&db->head_lock);
    int64_t newest = db->head_maxt;
    pthread_rwlock_unlock(&db->head_lock);
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++) if (db->blocks[i]->maxt > newest) newest = db->blocks[i]->maxt;
    if (db->opts.retention_ms > 0 && newest != INT64_MIN) {
        for (size_t i = 0; i < db->nblocks;) {
            tsdb_block_t *b = db->blocks[i];
            if (b->maxt < newest - db->opts.retention_ms) {
                strata_info("block past retention time, dropping", "block=%s maxt=%lld", b->id, (long long)b->maxt);
                b->dropped = 1;
                list_remove_locked(db, b);
            } else {
                i++;
            }
        }
    }
    if (db->opts.retention_bytes > 0) {
        uint64_t total = 0;
        for (size_t i = 0; i < db->nblocks; i++) total += db->blocks[i]->bytes;
        while (db->nblocks && total > db->opts.retention_bytes) {
            tsdb_block_t *b = db->blocks[0];  /* sorted by mint: the oldest */
            total -= b->bytes;
            strata_info("block over retention size, dropping", "block=%s bytes=%llu", b->id, (unsigned long long)b->bytes);
            b->dropped = 1;
            list_remove_locked(db, b);
        }
    }
    pthread_mutex_unlock(&db->blocks_mu);
}

int tsdb_compact(tsdb_t *db)
{
    if (!db) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    pthread_mutex_lock(&db->maint_mu);
    int rc = cut_if_due_locked(db);
    if (!rc) rc = compact_locked(db);
    retention_locked(db);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

static void *bg_main(void *arg)
{
    tsdb_t *db = arg;
    pthread_mutex_lock(&db->bg_mu);
    while (!db->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&db->bg_cond, &db->bg_mu, &ts);
        if (db->stopping) break;
        pthread_mutex_unlock(&db->bg_mu);
        pthread_mutex_lock(&db->maint_mu);
        if (cut_if_due_locked(db) == 0) compact_locked(db);
        retention_locked(db);
        pthread_mutex_unlock(&db->maint_mu);
        pthread_mutex_lock(&db->bg_mu);
    }
    pthread_mutex_unlock(&db->bg_mu);
    return NULL;
}

/* ---- open / close ---------------------------------------------------------------------- */

void tsdb_options_init(tsdb_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->block_duration_ms = 2 * 3600 * 1000LL;
    o->retention_ms = 15 * 24 * 3600 * 1000LL;
    o->retention_bytes = 0;
    o->ooo_window_ms = 10 * 60 * 1000LL;
    o->fsync = TSDB_FSYNC_INTERVAL;
    o->fsync_interval_ms = 100;
    o->wal_segment_bytes = 64ull << 20;
    o->background = 1;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int load_blocks(tsdb_t *db)
{
    DIR *d = opendir(db->blocks_dir);
    if (!d) return STRATA_EIO;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp")) {
            char *p = join(db->blocks_dir, e->d_name);
            if (p) { tsdb_rm_tree(p); free(p); }
            continue;
        }
        tsdb_block_t *b = NULL;
        int brc = tsdb_block_open(db->blocks_dir, e->d_name, &b);
        if (brc == STRATA_ECORRUPT || brc == STRATA_EVERSION) {
            strata_error("block corrupt at open, moving it aside", "block=%s err=\"%s\"", e->d_name, strata_strerror(brc));
            atomic_fetch_add(&db->blocks_corrupt, 1);
            mkdir(db->corrupt_dir, 0755);
            char *src = join(db->blocks_dir, e->d_name), *dst = join(db->corrupt_dir, e->d_name);
            if (src && dst && rename(src, dst) != 0)
                strata_error("cannot move corrupt block aside", "block=%s errno=%d", e->d_name, errno);
            free(src);
            free(dst);
            continue;
        }
        if (brc) { rc = brc; break; }
        pthread_mutex_lock(&db->blocks_mu);
        rc = list_add_locked(db, b);
        pthread_mutex_unlock(&db->blocks_mu);
        if (rc) tsdb_block_close(b);
    }
    closedir(d);
    return rc;
}

static void db_free(tsdb_t *db)
{
    pthread_mutex_lock(&db->blocks_mu);
    while (db->nblocks) list_remove_locked(db, db->blocks[db->nblocks - 1]);
    pthread_mutex_unlock(&db->blocks_mu);
    free(db->blocks);
    for (uint32_t r = 0; r < db->next_ref && db->series; r++) {
        hseries_t *s = db->series[r];
        if (!s) continue;
        for (uint32_t i = 0; i < s->nchunks; i++) free(s->chunks[i]);
        free(s->chunks); free(s->raw); free(s->ooo); free(s);
    }
    free(db->series);
    free(db->smap);
    free(db->alias);
    tsdb_head_index_free(&db->hidx);
    tsdb_symtab_free(&db->syms);
    if (db->lock_fd >= 0) close(db->lock_fd);
    pthread_rwlock_destroy(&db->gate);
    pthread_rwlock_destroy(&db->head_lock);
    pthread_mutex_destroy(&db->blocks_mu);
    pthread_mutex_destroy(&db->maint_mu);
    pthread_mutex_destroy(&db->obs_mu);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cond);
    free(db->dir);
    free(db->blocks_dir);
    free(db->corrupt_dir);
    free(db);
}

int tsdb_open(const tsdb_options_t *opts, tsdb_t **out)
{
    if (!opts || !opts->dir || !out) return STRATA_EINVAL;
    *out = NULL;
    tsdb_t *db = calloc(1, sizeof *db);
    if (!db) return STRATA_ENOMEM;
    db->opts = *opts;
    tsdb_options_t def;
    tsdb_options_init(&def);
    if (db->opts.block_duration_ms <= 0) db->opts.block_duration_ms = def.block_duration_ms;
    if (db->opts.ooo_window_ms < 0) db->opts.ooo_window_ms = 0;
    if (db->opts.fsync_interval_ms <= 0) db->opts.fsync_interval_ms = def.fsync_interval_ms;
    if (!db->opts.wal_segment_bytes) db->opts.wal_segment_bytes = def.wal_segment_bytes;
    db->lock_fd = -1;
    db->head_mint = INT64_MAX;
    db->head_maxt = INT64_MIN;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&db->gate, &ra);
    pthread_rwlock_init(&db->head_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&db->blocks_mu, NULL);
    pthread_mutex_init(&db->maint_mu, NULL);
    pthread_mutex_init(&db->obs_mu, NULL);
    pthread_mutex_init(&db->bg_mu, NULL);
    pthread_cond_init(&db->bg_cond, NULL);
    tsdb_head_index_init(&db->hidx);
    int rc = tsdb_symtab_init(&db->syms);
    db->dir = strdup(opts->dir);
    db->blocks_dir = db->dir ? join(db->dir, "blocks") : NULL;
    db->corrupt_dir = db->dir ? join(db->dir, "corrupt") : NULL;
    if (!rc && (!db->dir || !db->blocks_dir || !db->corrupt_dir)) rc = STRATA_ENOMEM;
    if (!rc && mkdir(db->dir, 0755) != 0 && errno != EEXIST) {
        strata_error("cannot create data dir", "dir=%s errno=%d", db->dir, errno);
        rc = STRATA_EIO;
    }
    if (!rc) {
        char *lp = join(db->dir, "LOCK");
        db->lock_fd = lp ? open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
        free(lp);
        if (db->lock_fd < 0) rc = STRATA_EIO;
        else if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK ? STRATA_ELOCKED : STRATA_EIO;
            if (rc == STRATA_ELOCKED) strata_error("data directory locked by another process", "dir=%s", db->dir);
        }
    }
    if (!rc && mkdir(db->blocks_dir, 0755) != 0 && errno != EEXIST) rc = STRATA_EIO;
    if (!rc) rc = load_blocks(db);
    if (!rc) {
        tsdb_wal_options_t wo = { db->opts.fsync, db->opts.fsync_interval_ms, db->opts.wal_segment_bytes,
                                  fsync_trampoline, db };
        tsdb_wal_replay_ops_t ops = { replay_on_series, replay_on_samples, db };
        tsdb_wal_replay_stats_t st = { 0 };
        atomic_store(&db->replaying, 1);
        pthread_rwlock_wrlock(&db->head_lock);
        rc = tsdb_wal_open(db->dir, &wo, &ops, &st, &db->wal);
        pthread_rwlock_unlock(&db->head_lock);
        atomic_store(&db->replaying, 0);
        db->wal_corruptions = st.corrupt_records;
        free(db->alias);
        db->alias = NULL;
        db->nalias = db->alias_cap = 0;
        if (!rc)
            strata_info("wal replayed", "dir=%s records=%llu series=%llu samples=%llu corrupt=%llu head_series=%llu",
                        db->dir, (unsigned long long)st.records, (unsigned long long)st.series,
                        (unsigned long long)st.samples, (unsigned long long)st.corrupt_records,
                        (unsigned long long)db->head_series);
    }
    if (!rc && db->opts.background) {
        if (pthread_create(&db->bg, NULL, bg_main, db) != 0) rc = STRATA_ENOMEM;
        else db->bg_started = 1;
    }
    if (rc) {
        tsdb_wal_close(db->wal);
        db_free(db);
        return rc;
    }
    *out = db;
    return 0;
}

void tsdb_close(tsdb_t *db)
{
    if (!db) return;
    atomic_store(&db->closed, 1);
    if (db->bg_started) {
        pthread_mutex_lock(&db->bg_mu);
        db->stopping = 1;
        pthread_cond_signal(&db->bg_cond);
        pthread_mutex_unlock(&db->bg_mu);
        pthread_join(db->bg, NULL);
    }
    /* wait for appends in flight */
    pthread_rwlock_wrlock(&db->gate);
    pthread_rwlock_unlock(&db->gate);
    tsdb_wal_close(db->wal);
    db_free(db);
}

int tsdb_sync(tsdb_t *db)
{
    if (!db) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    return tsdb_wal_sync(db->wal);
}

void tsdb_set_fsync_observer(tsdb_t *db, tsdb_fsync_observer_fn fn, void *ctx)
{
    if (!db) return;
    pthread_mutex_lock(&db->obs_mu);
    db->obs_fn = fn;
    db->obs_ctx = ctx;
    pthread_mutex_unlock(&db->obs_mu);
}

void tsdb_get_stats(tsdb_t *db, tsdb_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->min_time = INT64_MAX;
    st->max_time = INT64_MIN;
    st->page_cache_bytes = tsdb_page_cache_bytes();
    if (!db) return;
    pthread_rwlock_rdlock(&db->head_lock);
    st->series = db->smap_n;
    st->head_series = db->head_series;
    st->head_samples = db->head_samples;
    st->head_bytes = db->head_bytes + db->hidx.bytes + db->syms.bytes +
                     db->smap_slots * sizeof *db->smap;
    if (db->head_samples) { st->min_time = db->head_mint; st->max_time = db->head_maxt; }
    pthread_rwlock_unlock(&db->head_lock);
    pthread_mutex_lock(&db->blocks_mu);
    st->blocks = db->nblocks;
    for (size_t i = 0; i < db->nblocks; i++) {
        st->block_bytes += db->blocks[i]->bytes;
        if (db->blocks[i]->mint < st->min_time) st->min_time = db->blocks[i]->mint;
        if (db->blocks[i]->maxt > st->max_time) st->max_time = db->blocks[i]->maxt;
    }
    pthread_mutex_unlock(&db->blocks_mu);
    st->wal_bytes = db->wal ? tsdb_wal_disk_bytes(db->wal) : 0;
    st->samples_appended = atomic_load(&db->samples_appended);
    st->wal_fsyncs = atomic_load(&db->wal_fsyncs);
    pthread_mutex_lock(&db->obs_mu);
    st->wal_fsync_seconds_total = db->fsync_seconds;
    pthread_mutex_unlock(&db->obs_mu);
    st->wal_corruptions = db->wal_corruptions;
    st->blocks_corrupt = atomic_load(&db->blocks_corrupt);
    st->replaying = atomic_load(&db->replaying);
}

/* ---- label values ------------------------------------------------------------------------ */

struct lv_ctx { tsdb_t *db; const char **v; size_t n, cap; int rc; };

static int lv_push(struct lv_ctx *c, const char *s)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 32;
        const char **nv = realloc(c->v, nc * sizeof *nv);
        if (!nv) return c->rc = STRATA_ENOMEM;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = s;
    return 0;
}

static int lv_block_cb(void *vctx, const char *value, const uint32_t *ids, size_t n)
{
    (void)ids; (void)n;
    struct lv_ctx *c = vctx;
    uint32_t id;
    /* block strings go away with the block; the db's symbols live until close */
    int rc = tsdb_symtab_intern(&c->db->syms, value, &id);
    if (rc) return c->rc = rc;
    return lv_push(c, tsdb_symtab_str(&c->db->syms, id));
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tsdb_label_values(tsdb_t *db, const char *name, const char ***values, size_t *n)
{
    if (!db || !name || !values || !n) return STRATA_EINVAL;
    *values = NULL;
    *n = 0;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    struct lv_ctx c = { db, NULL, 0, 0, 0 };
    tsdb_block_t **bl = NULL;
    size_t nb = 0;
    int rc = blocks_snapshot(db, INT64_MIN, INT64_MAX, &bl, &nb);
    if (rc) return rc;
    pthread_rwlock_wrlock(&db->head_lock);
    uint32_t ns;
    if (tsdb_symtab_find(&db->syms, name, &ns)) {
        const struct tsdb_lname *ln = tsdb_head_index_name(&db->hidx, ns);
        for (uint32_t i = 0; ln && i < ln->n && !c.rc; i++) {
            const tsdb_postings_t *p = tsdb_head_index_get(&db->hidx, ns, ln->vals[i]);
            if (p && p->n) lv_push(&c, tsdb_symtab_str(&db->syms, ln->vals[i]));
        }
    }
    for (size_t i = 0; i < nb && !c.rc; i++) tsdb_block_index_ops.each_value(bl[i], name, lv_block_cb, &c);
    pthread_rwlock_unlock(&db->head_lock);
    for (size_t i = 0; i < nb; i++) block_unref(db, bl[i]);
    free(bl);
    if (c.rc) { free(c.v); return c.rc; }
    if (c.n > 1) qsort(c.v, c.n, sizeof *c.v, cmp_cstr);
    size_t w = 0;
    for (size_t i = 0; i < c.n; i++) if (!w || strcmp(c.v[w - 1], c.v[i]) != 0) c.v[w++] = c.v[i];
    *values = c.v;
    *n = w;
    return 0;
}
