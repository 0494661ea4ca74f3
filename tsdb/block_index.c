/*
 * block_index.c: a block's index: building it from the series a writer
 * collected, parsing and checking it at open (symbols, series, chunk refs,
 * postings), and the index interface matchers evaluate over a block.
 */
#include "block_internal.h"
#include "codec.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static uint32_t sym_id(const char **syms, uint32_t n, const char *s)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(syms[mid], s);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return UINT32_MAX; /* unreachable: every label string was added */
}

struct triple {
    uint32_t name, value, series;
};
static int cmp_triple(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

/* Pointer -> symbol id.  Label strings come from interned tables (the head's
 * symbols, a block's symbols), so the same string is nearly always the same
 * pointer: deduplicating by address first leaves only the few distinct
 * strings to sort with strcmp, instead of every label of every series. */
typedef struct ptrmap {
    const char **keys;
    uint32_t *ids;
    size_t slots, n;
} ptrmap_t;

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
        if (!nm.keys || !nm.ids) {
            free(nm.keys);
            free(nm.ids);
            return STRATA_ENOMEM;
        }
        for (size_t i = 0; i < m->slots; i++)
            if (m->keys[i]) {
                nm.keys[ptr_slot(&nm, m->keys[i])] = m->keys[i];
                nm.n++;
            }
        free(m->keys);
        free(m->ids);
        *m = nm;
    }
    size_t i = ptr_slot(m, p);
    if (!m->keys[i]) {
        m->keys[i] = p;
        m->n++;
    }
    return 0;
}

int tsdb_block_index_build(const tsdb_block_wseries_t *series, size_t nseries, const tsdb_block_chunk_t *cm,
                           enc_buf_t *ix)
{
    size_t nl = 0;
    for (size_t i = 0; i < nseries; i++) nl += series[i].nlabels;
    ptrmap_t pm = { 0 };
    int rc = 0;
    for (size_t i = 0; !rc && i < nseries; i++)
        for (uint32_t j = 0; !rc && j < series[i].nlabels; j++) {
            rc = ptrmap_add(&pm, series[i].labels[j].name);
            if (!rc) rc = ptrmap_add(&pm, series[i].labels[j].value);
        }
    const char **strs = rc ? NULL : malloc((pm.n + 1) * sizeof *strs);
    struct triple *tr = rc ? NULL : malloc((nl + 1) * sizeof *tr);
    if (!rc && (!strs || !tr)) rc = STRATA_ENOMEM;
    uint32_t nsyms = 0;
    if (!rc) {
        size_t k = 0;
        for (size_t i = 0; i < pm.slots; i++)
            if (pm.keys[i]) strs[k++] = pm.keys[i];
        qsort(strs, k, sizeof *strs, cmp_str);
        for (size_t i = 0; i < k; i++)
            if (!nsyms || strcmp(strs[nsyms - 1], strs[i]) != 0) strs[nsyms++] = strs[i];
        for (size_t i = 0; i < pm.slots; i++)
            if (pm.keys[i]) pm.ids[i] = sym_id(strs, nsyms, pm.keys[i]);
        rc |= enc_buf_put32(ix, TSDB_INDEX_MAGIC) | enc_buf_put32(ix, TSDB_BLOCK_VERSION) |
              enc_buf_put32(ix, nsyms);
        for (uint32_t i = 0; i < nsyms; i++) {
            size_t l = strlen(strs[i]);
            rc |= enc_buf_put32(ix, (uint32_t)l) | enc_buf_put(ix, strs[i], l + 1);
        }
        rc |= enc_buf_put32(ix, (uint32_t)nseries);
        size_t t = 0;
        for (size_t i = 0; i < nseries; i++) {
            const tsdb_block_wseries_t *s = &series[i];
            rc |= enc_buf_put32(ix, s->nlabels);
            for (uint32_t j = 0; j < s->nlabels; j++) {
                uint32_t n = pm.ids[ptr_slot(&pm, s->labels[j].name)];
                uint32_t v = pm.ids[ptr_slot(&pm, s->labels[j].value)];
                rc |= enc_buf_put32(ix, n) | enc_buf_put32(ix, v);
                tr[t++] = (struct triple){ n, v, (uint32_t)i };
            }
            rc |= enc_buf_put32(ix, s->nchunks);
            for (uint32_t c = 0; c < s->nchunks; c++) {
                const tsdb_block_chunk_t *m = &cm[s->chunk0 + c];
                rc |= enc_buf_put64(ix, (uint64_t)m->mint) | enc_buf_put64(ix, (uint64_t)m->maxt) |
                      enc_buf_put64(ix, m->page) | enc_buf_put32(ix, m->off) | enc_buf_put32(ix, m->len) |
                      enc_buf_put32(ix, m->count);
            }
            rc |= enc_buf_put64(ix, s->r5_page) | enc_buf_put32(ix, s->r5_off) | enc_buf_put32(ix, s->r5_n) |
                  enc_buf_put64(ix, s->r1_page) | enc_buf_put32(ix, s->r1_off) | enc_buf_put32(ix, s->r1_n);
        }
        /* postings: by (name, value), series ascending within each */
        qsort(tr, t, sizeof *tr, cmp_triple);
        uint32_t np = 0;
        for (size_t i = 0; i < t; i++)
            np += (i == 0 || tr[i].name != tr[i - 1].name || tr[i].value != tr[i - 1].value);
        rc |= enc_buf_put32(ix, np);
        for (size_t i = 0; i < t;) {
            size_t j = i;
            while (j < t && tr[j].name == tr[i].name && tr[j].value == tr[i].value) j++;
            rc |= enc_buf_put32(ix, tr[i].name) | enc_buf_put32(ix, tr[i].value) |
                  enc_buf_put32(ix, (uint32_t)(j - i));
            for (size_t k2 = i; k2 < j; k2++) rc |= enc_buf_put32(ix, tr[k2].series);
            i = j;
        }
        rc |= enc_buf_put32(ix, tsdb_crc32c(0, ix->p, ix->n));
        if (rc) rc = STRATA_ENOMEM;
    }
    free(pm.keys);
    free(pm.ids);
    free(strs);
    free(tr);
    return rc;
}

/* ---- parsing ---------------------------------------------------------------- */

int tsdb_block_index_parse(tsdb_block_t *b, uint8_t *p, size_t n)
{
    if (n < 16) return STRATA_ECORRUPT;
    uint32_t crc;
    memcpy(&crc, p + n - 4, 4);
    if (tsdb_crc32c(0, p, n - 4) != crc) return STRATA_ECORRUPT;
    enc_rd_t r = { p, p + n - 4, 0 };
    if (enc_rd32(&r) != TSDB_INDEX_MAGIC) return STRATA_ECORRUPT;
    uint32_t version = enc_rd32(&r);
    if (version != b->version)
        return version < 1 || version > TSDB_BLOCK_VERSION ? STRATA_EVERSION : STRATA_ECORRUPT;
    uint32_t nsyms = enc_rd32(&r);
    if (r.bad || nsyms > (size_t)(r.end - r.p) / 5) return STRATA_ECORRUPT;
    b->syms = malloc(((size_t)nsyms + 1) * sizeof *b->syms);
    if (!b->syms) return STRATA_ENOMEM;
    b->nsyms = nsyms;
    for (uint32_t i = 0; i < nsyms; i++) {
        uint32_t l = enc_rd32(&r);
        if (r.bad || (size_t)(r.end - r.p) < (size_t)l + 1 || r.p[l] != 0) return STRATA_ECORRUPT;
        b->syms[i] = (const char *)r.p;
        r.p += l + 1;
    }
    uint32_t ns = enc_rd32(&r);
    if (r.bad || ns > (size_t)(r.end - r.p) / 40) return STRATA_ECORRUPT;
    /* Labels, chunk metas and postings are copied into aligned arrays sized by
     * a first pass, so the rest of the engine reads plain structs. */
    const uint8_t *series_start = r.p;
    size_t nlab = 0, nch = 0;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t nl = enc_rd32(&r);
        if (r.bad || nl > (size_t)(r.end - r.p) / 8) return STRATA_ECORRUPT;
        r.p += (size_t)nl * 8;
        nlab += nl;
        uint32_t nc = enc_rd32(&r);
        if (r.bad || nc > (size_t)(r.end - r.p) / 36) return STRATA_ECORRUPT;
        r.p += (size_t)nc * 36;
        nch += nc;
        if ((size_t)(r.end - r.p) < 32) return STRATA_ECORRUPT; /* rollup refs */
        r.p += 32;
    }
    uint32_t npost = enc_rd32(&r);
    if (r.bad || npost > (size_t)(r.end - r.p) / 12) return STRATA_ECORRUPT;
    size_t nids = ((size_t)(r.end - r.p) - (size_t)npost * 12) / 4;
    uint32_t *lab = malloc((nlab * 2 + nids + 1) * sizeof *lab);
    tsdb_block_chunk_t *ch = malloc((nch + 1) * sizeof *ch);
    b->series = malloc(((size_t)ns + 1) * sizeof *b->series);
    b->postings = malloc(((size_t)npost + 1) * sizeof *b->postings);
    if (!lab || !ch || !b->series || !b->postings) {
        free(lab);
        free(ch);
        return STRATA_ENOMEM;
    }
    /* the arrays are freed with the block: keep them in one allocation list */
    void **keep = malloc(3 * sizeof *keep);
    if (!keep) {
        free(lab);
        free(ch);
        return STRATA_ENOMEM;
    }
    keep[0] = p;
    keep[1] = lab;
    keep[2] = ch;
    b->mem = keep;
    r.p = series_start;
    size_t li = 0, ci = 0;
    for (uint32_t i = 0; i < ns; i++) {
        tsdb_block_series_t *s = &b->series[i];
        s->nlabels = enc_rd32(&r);
        s->labels = lab + li;
        for (uint32_t j = 0; j < 2 * s->nlabels; j++) {
            uint32_t id = enc_rd32(&r);
            if (id >= nsyms) return STRATA_ECORRUPT;
            lab[li++] = id;
        }
        s->nchunks = enc_rd32(&r);
        s->chunks = ch + ci;
        for (uint32_t c = 0; c < s->nchunks; c++, ci++) {
            ch[ci].mint = (int64_t)enc_rd64(&r);
            ch[ci].maxt = (int64_t)enc_rd64(&r);
            ch[ci].page = enc_rd64(&r);
            ch[ci].off = enc_rd32(&r);
            ch[ci].len = enc_rd32(&r);
            ch[ci].count = enc_rd32(&r);
            if (ch[ci].count == 0 || ch[ci].count > TSDB_CHUNK_MAX_SAMPLES) return STRATA_ECORRUPT;
        }
        s->r5_page = enc_rd64(&r);
        s->r5_off = enc_rd32(&r);
        s->r5_n = enc_rd32(&r);
        s->r1_page = enc_rd64(&r);
        s->r1_off = enc_rd32(&r);
        s->r1_n = enc_rd32(&r);
    }
    enc_rd32(&r); /* npostings, read above */
    uint32_t *ids = lab + li;
    size_t idi = 0;
    for (uint32_t i = 0; i < npost; i++) {
        struct tsdb_bpost *pp = &b->postings[i];
        pp->name = enc_rd32(&r);
        pp->value = enc_rd32(&r);
        pp->n = enc_rd32(&r);
        if (r.bad || pp->name >= nsyms || pp->value >= nsyms || pp->n > nids - idi) return STRATA_ECORRUPT;
        pp->ids = ids + idi;
        for (uint32_t k = 0; k < pp->n; k++) {
            uint32_t id = enc_rd32(&r);
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
    keep[0] = packed; /* the caller frees p */
    b->nseries = ns;
    b->npostings = npost;
    return 0;
}

void tsdb_block_index_free(tsdb_block_t *b)
{
    if (!b->mem) return;
    void **keep = b->mem;
    free(keep[0]);
    free(keep[1]);
    free(keep[2]);
}

/* ---- index ops over a block ----------------------------------------------------------- */

static uint32_t block_sym(const tsdb_block_t *b, const char *s) { return sym_id(b->syms, b->nsyms, s); }

/* First posting index whose name is >= name (postings sorted by (name, value) ids). */
static uint32_t post_lower(const tsdb_block_t *b, uint32_t name, uint32_t value)
{
    uint32_t lo = 0, hi = b->npostings;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct tsdb_bpost *p = &b->postings[mid];
        if (p->name < name || (p->name == name && p->value < value))
            lo = mid + 1;
        else
            hi = mid;
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

static void block_lookup(const void *idx, const char *name, const char *value, const uint32_t **ids,
                         size_t *n)
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
