/*
 * head.c: the in-memory head: a series' samples (sealed codec chunks back to
 * back in one buffer, the open buffer inside the series' allocation,
 * out-of-order samples; layout in docs/storage.md "Head"), the series table
 * that finds a series by its label set, series creation and garbage
 * collection.
 */
#include "head_internal.h"
#include "codec.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

/* ---- head series ------------------------------------------------------------ */

/* The series, its labels and its open buffer (head_raw) in one allocation. */
static size_t series_size(uint16_t nlabels)
{
    return sizeof(hseries_t) + 2u * nlabels * sizeof(uint32_t) +
           TSDB_HEAD_OPEN_SAMPLES * sizeof(tsdb_sample_t);
}
_Static_assert(sizeof(hseries_t) % 8 == 0, "the open buffer after the label pairs is 8-byte aligned");

_Static_assert(TSDB_HEAD_OPEN_SAMPLES >= 1 && TSDB_HEAD_OPEN_SAMPLES <= UINT8_MAX,
               "the open buffer is counted in a uint8_t");

static inline uint32_t pow2_ceil(uint32_t n) { return n <= 1 ? 1 : 1u << (32 - __builtin_clz(n - 1)); }

/* Slots of the out-of-order buffer holding n samples: 4, 8, 16, ... */
static inline uint32_t ooo_cap(uint32_t n) { return n ? (n <= 4 ? 4 : pow2_ceil(n)) : 0; }

/* Bytes to allocate for a chunk buffer of need bytes: what glibc's malloc
 * gives anyway (16-byte steps, 8 of them its header), so none is wasted. */
static inline uint32_t cbuf_cap_for(uint32_t need)
{
    return need ? (uint32_t)(((uint64_t)need + 8 + 15) & ~(uint64_t)15) - 8 : 0;
}

/* Grows s->cbuf to hold need bytes.  It never shrinks while the series
 * holds samples: the room a merge frees takes the next seals. */
static int cbuf_grow(tsdb_t *db, hseries_t *s, uint32_t need)
{
    uint32_t nc = cbuf_cap_for(need);
    uint8_t *nb = realloc(s->cbuf, nc);
    if (!nb) return STRATA_ENOMEM;
    db->head_bytes += nc - s->ccap;
    s->cbuf = nb;
    s->ccap = nc;
    return 0;
}

int head_chunk_next(const hseries_t *s, uint32_t *off, hchunk_t *c)
{
    if (*off + HEAD_CHUNK_PREFIX > s->clen) return 0;
    const uint8_t *p = s->cbuf + *off;
    uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    size_t n = 0;
    if (*off + HEAD_CHUNK_PREFIX + len > s->clen ||
        tsdb_chunk_info(p + HEAD_CHUNK_PREFIX, len, &n, &c->mint, &c->maxt) != 0)
        return 0;
    c->data = p + HEAD_CHUNK_PREFIX;
    c->len = len;
    c->n = (uint32_t)n;
    *off += HEAD_CHUNK_PREFIX + len;
    return 1;
}

void head_series_free_data(tsdb_t *db, hseries_t *s)
{
    db->head_bytes -= s->ccap + (uint64_t)ooo_cap(s->nooo) * sizeof(tsdb_sample_t);
    db->head_samples -= s->nooo + s->nraw;
    free(s->cbuf);
    free(s->ooo);
    s->cbuf = NULL;
    s->ooo = NULL;
    s->clen = s->ccap = s->tail_off = 0;
    s->nraw = 0;
    s->nooo = 0;
}

uint64_t head_series_chunk_samples(const hseries_t *s)
{
    uint64_t n = 0;
    hchunk_t c;
    for (uint32_t off = 0; head_chunk_next(s, &off, &c);) n += c.n;
    return n;
}

/* Appends the codec chunk enc[0..len) to s->cbuf at offset at (dropping
 * whatever followed it). */
static int cbuf_put(tsdb_t *db, hseries_t *s, uint32_t at, const uint8_t *enc, size_t len)
{
    if (len > UINT16_MAX || (uint64_t)at + HEAD_CHUNK_PREFIX + len > UINT32_MAX / 2) return STRATA_ELIMIT;
    uint32_t need = at + HEAD_CHUNK_PREFIX + (uint32_t)len;
    if (need > s->ccap) {
        int rc = cbuf_grow(db, s, need);
        if (rc) return rc;
    }
    s->cbuf[at] = (uint8_t)len;
    s->cbuf[at + 1] = (uint8_t)(len >> 8);
    memcpy(s->cbuf + at + HEAD_CHUNK_PREFIX, enc, len);
    s->clen = need;
    return 0;
}

/* Seals the open buffer into a codec chunk at the end of s->cbuf. */
static int series_seal(tsdb_t *db, hseries_t *s)
{
    uint8_t enc[1024]; /* tsdb_chunk_max_size(8) is 232; a short one fails the encode */
    size_t written = 0;
    int rc = tsdb_chunk_encode(head_raw(s), s->nraw, enc, sizeof enc, &written);
    if (!rc) rc = cbuf_put(db, s, s->clen, enc, written);
    if (!rc) s->nraw = 0;
    return rc;
}

/* Merges trailing chunks as a counter in base TSDB_HEAD_MERGE_FANIN does
 * (4 x 8 samples -> 32, 4 x 32 -> 128 = TSDB_HEAD_CHUNK_SAMPLES): once the
 * newest FANIN chunks hold the same count, they become one chunk, and so on
 * up.  Small chunks keep the open buffer short (raw samples cost 16 bytes
 * each), full ones compress better, and each sample is encoded
 * log_FANIN(TSDB_HEAD_CHUNK_SAMPLES / TSDB_HEAD_OPEN_SAMPLES) + 1 times. */
static int series_merge_tail(tsdb_t *db, hseries_t *s)
{
    uint32_t offs[64], ns[64], k = 0;
    hchunk_t c;
    for (uint32_t off = s->tail_off, at = off; head_chunk_next(s, &off, &c); at = off) {
        if (k == 64) return 0; /* not a counter's tail: leave it (never happens) */
        offs[k] = at;
        ns[k++] = c.n;
    }
    while (k >= TSDB_HEAD_MERGE_FANIN) {
        uint32_t first = k - TSDB_HEAD_MERGE_FANIN, total = 0;
        for (uint32_t i = first; i < k; i++) {
            if (ns[i] != ns[k - 1]) break;
            total += ns[i];
        }
        if (total != TSDB_HEAD_MERGE_FANIN * ns[k - 1] || total > TSDB_HEAD_CHUNK_SAMPLES) break;
        tsdb_sample_t buf[TSDB_HEAD_MAX_CHUNK];
        size_t n = 0;
        for (uint32_t off = offs[first]; head_chunk_next(s, &off, &c);) {
            size_t got = 0;
            int rc = tsdb_chunk_decode(c.data, c.len, buf + n, TSDB_HEAD_MAX_CHUNK - n, &got);
            if (rc) return rc;
            n += got;
        }
        uint8_t enc[4096];
        size_t written = 0;
        if (tsdb_chunk_max_size(n) > sizeof enc) break; /* keep them small rather than fail */
        int rc = tsdb_chunk_encode(buf, n, enc, sizeof enc, &written);
        if (!rc) rc = cbuf_put(db, s, offs[first], enc, written);
        if (rc) return rc;
        ns[first] = (uint32_t)n;
        k = first + 1;
    }
    /* a chunk that FANIN of its size would overfill is never merged again */
    uint32_t i = 0;
    while (i < k && TSDB_HEAD_MERGE_FANIN * ns[i] > TSDB_HEAD_CHUNK_SAMPLES) i++;
    if (i) s->tail_off = i < k ? offs[i] : s->clen;
    return 0;
}

/* Appends an in-order sample (t above everything in raw and chunks). */
int head_series_push(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    int rc;
    if (s->nraw == TSDB_HEAD_OPEN_SAMPLES && (rc = series_seal(db, s)))
        return rc; /* an earlier seal failed */
    head_raw(s)[s->nraw++] = (tsdb_sample_t){ t, v };
    db->head_samples++;
    if (s->nraw < TSDB_HEAD_OPEN_SAMPLES) return 0;
    rc = series_seal(db, s);
    return rc ? rc : series_merge_tail(db, s);
}

static int find_in(const tsdb_sample_t *a, size_t n, int64_t t, double *v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && a[lo].t == t) {
        if (v) *v = a[lo].v;
        return 1;
    }
    return 0;
}

/* 1 when the series holds a sample at t (its value in *v). */
int head_series_find(const hseries_t *s, int64_t t, double *v)
{
    if (find_in(head_raw(s), s->nraw, t, v) || find_in(s->ooo, s->nooo, t, v)) return 1;
    hchunk_t c;
    for (uint32_t off = 0; head_chunk_next(s, &off, &c);) {
        if (t < c.mint || t > c.maxt) continue;
        tsdb_sample_t buf[TSDB_HEAD_MAX_CHUNK];
        size_t n = 0;
        if (tsdb_chunk_decode(c.data, c.len, buf, sizeof buf / sizeof *buf, &n) != 0) return 0;
        return find_in(buf, n, t, v);
    }
    return 0;
}

static int series_insert_ooo(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    if (s->nooo == UINT32_MAX / 2) return STRATA_ELIMIT;
    uint32_t cap = ooo_cap(s->nooo);
    if (s->nooo == cap) {
        uint32_t nc = ooo_cap(s->nooo + 1);
        tsdb_sample_t *no = realloc(s->ooo, (size_t)nc * sizeof *no);
        if (!no) return STRATA_ENOMEM;
        db->head_bytes += (uint64_t)(nc - cap) * sizeof *no;
        s->ooo = no;
    }
    size_t lo = 0, hi = s->nooo;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ooo[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(s->ooo + lo + 1, s->ooo + lo, (s->nooo - lo) * sizeof *s->ooo);
    s->ooo[lo] = (tsdb_sample_t){ t, v };
    s->nooo++;
    db->head_samples++;
    return 0;
}

/* Makes one accepted sample visible; a sample already there is skipped
 * (a concurrent batch or the WAL replay got there first). */
int head_series_add(tsdb_t *db, hseries_t *s, int64_t t, double v)
{
    int rc, empty = s->nraw == 0 && s->clen == 0 && s->nooo == 0;
    if (s->maxt == INT64_MIN || t > s->maxt) {
        rc = head_series_push(db, s, t, v);
        if (!rc) s->maxt = t;
    } else {
        if (head_series_find(s, t, NULL)) return 0;
        rc = series_insert_ooo(db, s, t, v);
    }
    if (!rc) {
        if (empty) db->head_series++;
        if (t < db->head_mint) db->head_mint = t;
        if (t > db->head_maxt) db->head_maxt = t;
    }
    return rc;
}

int tsdb_grow_samples(tsdb_sample_t **buf, size_t *cap, size_t need)
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
int head_series_read(const hseries_t *s, int64_t mint, int64_t maxt, tsdb_sample_t **buf, size_t *n,
                     size_t *cap)
{
    size_t base = *n;
    hchunk_t c;
    for (uint32_t off = 0; head_chunk_next(s, &off, &c);) {
        if (c.maxt < mint || c.mint > maxt) continue;
        if (tsdb_grow_samples(buf, cap, *n + c.n)) return STRATA_ENOMEM;
        size_t got = 0;
        int rc = tsdb_chunk_decode(c.data, c.len, *buf + *n, c.n, &got);
        if (rc) return rc;
        tsdb_sample_t *d = *buf + *n;
        size_t w = 0;
        for (size_t j = 0; j < got; j++)
            if (d[j].t >= mint && d[j].t <= maxt) d[w++] = d[j];
        *n += w;
    }
    if (tsdb_grow_samples(buf, cap, *n + s->nraw + s->nooo)) return STRATA_ENOMEM;
    const tsdb_sample_t *raw = head_raw(s);
    for (uint32_t j = 0; j < s->nraw; j++)
        if (raw[j].t >= mint && raw[j].t <= maxt) (*buf)[(*n)++] = raw[j];
    size_t nin = *n - base, nooo = 0;
    tsdb_sample_t *o = *buf + *n; /* room reserved above */
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
        if (i > 0 && a[i - 1].t > tmp[j - 1].t)
            a[--k] = a[--i];
        else
            a[--k] = tmp[--j];
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

static inline uint64_t load64(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

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
uint64_t head_label_set_hash(const tsdb_label_t *labels, size_t n, size_t *lens)
{
    uint64_t h = UINT64_C(0x5eed) ^ n;
    for (size_t i = 0; i < n; i++) {
        lens[2 * i] = strlen(labels[i].name);
        lens[2 * i + 1] = strlen(labels[i].value);
        h = hash_str(hash_str(h, labels[i].name, lens[2 * i]), labels[i].value, lens[2 * i + 1]);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

/* A slot keeps the hash's high half beside the ref, so probing past other
 * series does not load them (each load is a cache miss at ingest rates). */
static inline uint64_t smap_slot(const hseries_t *s)
{
    return (s->hash >> 32 << 32) | ((uint64_t)s->ref + 1);
}

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
 * h and lens from head_label_set_hash(labels, n, lens). */
hseries_t *head_series_lookup(tsdb_t *db, const tsdb_label_t *labels, const size_t *lens, size_t n,
                              uint64_t h)
{
    return smap_find(db, labels, lens, n, h);
}

/* Creates a series with ref (UINT32_MAX: the next free one); h is
 * head_label_set_hash(labels, n). head_lock held. */
int head_series_create(tsdb_t *db, const tsdb_label_t *labels, size_t n, uint64_t h, uint32_t ref,
                       hseries_t **out)
{
    if (n == 0 || n > UINT16_MAX) return STRATA_EINVAL;
    hseries_t *s = calloc(1, series_size((uint16_t)n));
    if (!s) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = tsdb_symtab_intern(&db->syms, labels[i].name, &s->labels[2 * i]);
        if (!rc) rc = tsdb_symtab_intern(&db->syms, labels[i].value, &s->labels[2 * i + 1]);
        if (rc) {
            free(s);
            return rc;
        }
    }
    if (ref == UINT32_MAX) ref = db->next_ref;
    if (ref >= UINT32_MAX - 1) {
        free(s);
        return STRATA_ELIMIT;
    }
    if (ref >= db->series_cap) {
        size_t nc = db->series_cap ? db->series_cap : 1024;
        while (nc <= ref) nc *= 2;
        hseries_t **ns = realloc(db->series, nc * sizeof *ns);
        if (!ns) {
            free(s);
            return STRATA_ENOMEM;
        }
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
    for (size_t i = 0; !rc && i < n; i++)
        rc = tsdb_head_index_add(&db->hidx, s->labels[2 * i], s->labels[2 * i + 1], ref);
    if (rc) {
        db->series[ref] = NULL;
        free(s);
        return rc;
    } /* a dead smap entry cannot happen: only ENOMEM after insert */
    if (ref >= db->next_ref) db->next_ref = ref + 1;
    db->head_bytes += series_size((uint16_t)n);
    *out = s;
    return 0;
}

/* Drops series without samples and rebuilds the hash table and postings. */
int head_gc(tsdb_t *db)
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
        if (!s->nraw && !s->clen && !s->nooo) {
            db->head_bytes -= series_size(s->nlabels) + s->ccap;
            free(s->ooo);
            free(s->cbuf);
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
