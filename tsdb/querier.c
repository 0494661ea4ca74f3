/*
 * querier.c: reads: tsdb_select, series sets that merge the head and the
 * blocks series by series, and rollup reads (stored or recomputed).
 */
#include "head_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- series sets ---------------------------------------------------------------- */

typedef struct sel_entry {
    const uint32_t *pairs;
    uint32_t nlabels;
    int32_t src;       /* -1: head, else index into set->blks */
    uint32_t id;       /* head ref or block-local series */
    tsdb_sample_t *hs; /* head samples copied at select time */
    uint32_t nhs;
    int sure; /* block: a chunk boundary (a real sample) lies in range */
} sel_entry_t;

struct tsdb_series_set {
    tsdb_t *db;
    int64_t mint, maxt;
    tsdb_block_t **blks;
    size_t nblks;
    sel_entry_t *e;
    size_t ne, ecap;
    size_t gstart, gend;
    int lazy_head; /* head samples read at next() (cut: appends are quiesced) */
    strata_arena_t *arena;
    tsdb_label_t *labels;
    size_t labels_cap;
    tsdb_sample_t *samples, *tmp, *scratch;
    size_t ns, samples_cap, tmp_cap, nscratch, scratch_cap;
    int err, loaded; /* the current group's samples: read on demand */
    tsdb_rollup_point_t *roll, *rtmp;
    size_t nroll, roll_cap, nrtmp, rtmp_cap;
    tsdb_page_cache_t pc;
    /* Damaged chunk pages met (docs/storage.md): their chunks are skipped and
     * counted, or, in a compaction's set (strict), fail the read. */
    int strict;
    uint64_t damaged, damaged_cur; /* distinct pages: the whole set, the current series */
    struct dpage {
        const tsdb_block_t *b;
        uint64_t page;
    } * dseen, dlast;
    size_t ndseen, dseen_cap;
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

static int entry_order(const tsdb_series_set_t *set, const sel_entry_t *a, const sel_entry_t *b)
{
    int c = entry_cmp(set, a, b);
    if (c) return c;
    /* blocks (oldest first) before the head, so later sources win ties */
    int64_t sa = a->src < 0 ? INT32_MAX : a->src, sb = b->src < 0 ? INT32_MAX : b->src;
    return sa < sb ? -1 : sa > sb;
}

/* qsort_r comparator: ctx is the set the entries belong to. */
static int entry_qsort_cmp(const void *x, const void *y, void *ctx) { return entry_order(ctx, x, y); }

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
    for (size_t i = 0; i < set->nblks; i++) db_block_unref(set->db, set->blks[i]);
    free(set->blks);
    free(set->e);
    strata_arena_free(set->arena);
    free(set->labels);
    free(set->samples);
    free(set->tmp);
    free(set->scratch);
    free(set->roll);
    free(set->rtmp);
    free(set->dseen);
    tsdb_page_cache_free(&set->pc);
    free(set);
}

static const tsdb_index_ops_t head_index_ops;

/* The set's block object for b (the page cache hands it back const). */
static tsdb_block_t *set_block(const tsdb_series_set_t *set, const tsdb_block_t *b)
{
    for (size_t i = 0; i < set->nblks; i++)
        if (set->blks[i] == b) return set->blks[i];
    return NULL;
}

/* pc.on_damage: a chunk of the current series lies in a damaged page. */
static void on_damage(void *ctx, const tsdb_block_t *b, int file, uint64_t page)
{
    tsdb_series_set_t *set = ctx;
    tsdb_block_t *blk = set_block(set, b);
    if (blk) db_block_page_damaged(set->db, blk, file, page);
    /* a series' chunks in one page are consecutive */
    if (!(set->dlast.b == b && set->dlast.page == page)) {
        set->damaged_cur++;
        set->dlast = (struct dpage){ b, page };
    }
    for (size_t i = 0; i < set->ndseen; i++)
        if (set->dseen[i].b == b && set->dseen[i].page == page) return;
    set->damaged++;
    if (set->ndseen == set->dseen_cap) {
        size_t nc = set->dseen_cap ? set->dseen_cap * 2 : 8;
        struct dpage *nd = realloc(set->dseen, nc * sizeof *nd);
        if (!nd) return; /* counted again if met again: no worse than that */
        set->dseen = nd;
        set->dseen_cap = nc;
    }
    set->dseen[set->ndseen++] = (struct dpage){ b, page };
}

uint64_t tsdb_series_set_damaged(const tsdb_series_set_t *set, uint64_t *current)
{
    if (current) *current = set && set->gstart < set->ne && set->loaded ? set->damaged_cur : 0;
    return set ? set->damaged : 0;
}

/* Sorts the entries by label set, then source.  A block's entries come in
 * label order already (its series are stored so and postings are sorted), so
 * only the head's (e[0..nhead)) are sorted, and the runs are merged pairwise:
 * n log(runs) label comparisons instead of n log n, which showed up as a
 * quarter of a 30-day report's time. */
static int sort_entries(tsdb_series_set_t *set, size_t nhead, size_t *run, size_t nruns)
{
    if (nhead > 1) qsort_r(set->e, nhead, sizeof *set->e, entry_qsort_cmp, set);
    /* runs: the head, then each block's (run[k]: its start) */
    size_t *off = malloc((nruns + 2) * sizeof *off), n = 0;
    if (!off) return STRATA_ENOMEM;
    if (nhead) off[n++] = 0;
    for (size_t k = 0; k < nruns; k++)
        if (run[k] < (k + 1 < nruns ? run[k + 1] : set->ne)) off[n++] = run[k];
    off[n] = set->ne;
    sel_entry_t *a = set->e, *tmp = n > 1 ? malloc(set->ne * sizeof *tmp) : NULL;
    if (n > 1 && !tmp) {
        free(off);
        return STRATA_ENOMEM;
    }
    while (n > 1) {
        size_t w = 0;
        for (size_t r = 0; r < n; r += 2) {
            size_t i = off[r], mid = off[r + 1], j = mid, end = r + 1 < n ? off[r + 2] : mid, o = i;
            while (i < mid && j < end) tmp[o++] = entry_order(set, &a[j], &a[i]) < 0 ? a[j++] : a[i++];
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

int querier_build(tsdb_t *db, const querier_params_t *p, tsdb_series_set_t **out)
{
    const tsdb_cmatcher_t *cm = p->cm;
    size_t ncm = p->ncm, nblks = p->nblks;
    tsdb_block_t **blks = p->blks;
    int64_t mint = p->mint, maxt = p->maxt;
    int lazy_head = (p->flags & QUERIER_LAZY_HEAD) != 0;
    tsdb_series_set_t *set = calloc(1, sizeof *set);
    if (!set) {
        for (size_t i = 0; i < nblks; i++) db_block_unref(db, blks[i]);
        free(blks);
        return STRATA_ENOMEM;
    }
    set->db = db;
    set->mint = mint;
    set->maxt = maxt;
    set->blks = blks;
    set->nblks = nblks;
    set->lazy_head = lazy_head;
    /* a compaction (the blocks given): a damaged page must not be merged
     * away as if its samples never existed */
    set->strict = !(p->flags & QUERIER_SNAP_BLOCKS) && nblks > 0;
    set->pc.on_damage = on_damage;
    set->pc.damage_ctx = set;
    set->arena = strata_arena_new(256 * 1024);
    int rc = set->arena ? 0 : STRATA_ENOMEM;
    uint32_t *ids = NULL;
    size_t nids = 0;
    if (!rc && (p->flags & QUERIER_HEAD)) {
        pthread_rwlock_rdlock(&db->head_lock);
        if (cm) rc = tsdb_index_select(&head_index_ops, db, cm, ncm, &ids, &nids);
        for (uint32_t r = 0; !rc && r < (cm ? nids : db->next_ref); r++) {
            /* the head lock is held: a deadline bounds how long writers wait */
            if (p->deadline_ms && (r & 255) == 255 && tsdb_mono_ms() > p->deadline_ms) {
                rc = STRATA_ETIMEOUT;
                break;
            }
            hseries_t *s = db->series[cm ? ids[r] : r];
            if (!s) continue;
            sel_entry_t e = { .src = -1, .id = s->ref, .nlabels = s->nlabels };
            if (lazy_head) {
                e.pairs = s->labels;
            } else {
                size_t n = 0;
                rc = head_series_read(s, mint, maxt, &set->scratch, &n, &set->scratch_cap);
                const tsdb_sample_t *buf = set->scratch;
                if (!rc && n) {
                    uint32_t *p = strata_arena_alloc(set->arena, s->nlabels * 2u * sizeof *p);
                    e.hs = strata_arena_alloc(set->arena, n * sizeof *buf);
                    if (!p || !e.hs)
                        rc = STRATA_ENOMEM;
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
    if (!rc && (p->flags & QUERIER_SNAP_BLOCKS) &&
        (rc = db_blocks_snapshot(db, mint, maxt, &set->blks, &set->nblks)) == 0) {
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
            rc = set_push(
                set,
                (sel_entry_t){
                    .pairs = bs->labels, .nlabels = bs->nlabels, .src = (int32_t)b, .id = id, .sure = sure });
        }
        free(ids);
        ids = NULL;
    }
    if (!rc) rc = sort_entries(set, nhead, run, nruns);
    free(run);
    if (rc) {
        tsdb_series_set_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

/* Merges sorted b into sorted a (both duplicate-free); b wins equal timestamps. */
static int merge_into(tsdb_series_set_t *set, size_t na, const tsdb_sample_t *b, size_t nb)
{
    if (tsdb_grow_samples(&set->tmp, &set->tmp_cap, na + nb)) return STRATA_ENOMEM;
    size_t i = 0, j = 0, k = 0;
    const tsdb_sample_t *a = set->samples;
    while (i < na || j < nb) {
        if (j == nb || (i < na && a[i].t < b[j].t))
            set->tmp[k++] = a[i++];
        else {
            if (i < na && a[i].t == b[j].t) i++;
            set->tmp[k++] = b[j++];
        }
    }
    tsdb_sample_t *t = set->samples;
    set->samples = set->tmp;
    set->tmp = t;
    size_t c = set->samples_cap;
    set->samples_cap = set->tmp_cap;
    set->tmp_cap = c;
    set->ns = k;
    return 0;
}

/* Adds one source's sorted samples to the group's (the first is copied). */
static int group_add(tsdb_series_set_t *set, const tsdb_sample_t *src, size_t n)
{
    if (set->ns == 0) {
        if (tsdb_grow_samples(&set->samples, &set->samples_cap, n)) return STRATA_ENOMEM;
        if (n) memcpy(set->samples, src, n * sizeof *src);
        set->ns = n;
        return 0;
    }
    if (!n) return 0;
    /* Blocks come oldest first, so a source usually starts after what the
     * group holds: append, instead of re-merging everything read so far once
     * per block (quadratic over a 7-day range of 2 h blocks). */
    if (src[0].t > set->samples[set->ns - 1].t) {
        if (tsdb_grow_samples(&set->samples, &set->samples_cap, set->ns + n)) return STRATA_ENOMEM;
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
    set->damaged_cur = 0;
    set->dlast = (struct dpage){ NULL, 0 };
    for (size_t g = set->gstart; g < set->gend; g++) {
        sel_entry_t *e = &set->e[g];
        int rc = 0;
        set->nscratch = 0;
        if (e->src >= 0) {
            tsdb_block_t *b = set->blks[e->src];
            /* Decoded straight onto the group's samples: blocks come oldest
             * first and do not overlap, so this is the place they end up
             * (a copy through scratch was ~5% of a 7-day range read).  Only
             * when they do overlap is the new part moved out and merged. */
            size_t before = set->ns;
            rc = tsdb_block_series_samples(b, e->id, set->mint, set->maxt, &set->pc, &set->samples, &set->ns,
                                           &set->samples_cap);
            if (!rc && set->strict && set->damaged_cur) rc = STRATA_ECORRUPT;
            if (!rc && before && set->ns > before && set->samples[before].t <= set->samples[before - 1].t) {
                size_t n = set->ns - before;
                rc = tsdb_grow_samples(&set->scratch, &set->scratch_cap, n);
                if (!rc) {
                    memcpy(set->scratch, set->samples + before, n * sizeof *set->scratch);
                    set->ns = before;
                    rc = merge_into(set, before, set->scratch, n);
                }
            }
        } else if (set->lazy_head) {
            pthread_rwlock_rdlock(&db->head_lock);
            hseries_t *s = db->series[e->id];
            if (s)
                rc = head_series_read(s, set->mint, set->maxt, &set->scratch, &set->nscratch,
                                      &set->scratch_cap);
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

uint32_t querier_current_id(const tsdb_series_set_t *set) { return set->e[set->gstart].id; }

const tsdb_label_t *tsdb_series_set_labels(tsdb_series_set_t *set, size_t *nlabels)
{
    if (!set || set->gstart >= set->ne) {
        if (nlabels) *nlabels = 0;
        return NULL;
    }
    *nlabels = set->e[set->gstart].nlabels;
    return set->labels;
}

int tsdb_series_set_samples(tsdb_series_set_t *set, const tsdb_sample_t **samples, size_t *n)
{
    if (!set || set->gstart >= set->ne) return STRATA_EINVAL;
    if (group_ensure(set)) {
        *samples = NULL;
        *n = 0;
        return set->err;
    }
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
    int first = 1; /* later points of this source carry their own baseline */
    for (size_t i = 0; i < n; i++) {
        tsdb_rollup_point_t q = p[i];
        if (q.count && first) {
            if (base) q.increase += tsdb_counter_delta(base->last, q.first);
            first = 0;
        }
        tsdb_rollup_point_t *last = set->nroll ? &set->roll[set->nroll - 1] : NULL;
        if (last && last->t == q.t) {
            tsdb_rollup_join(last, &q, set->db->opts.rollup_zero_run_ms);
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

int tsdb_series_set_rollups(tsdb_series_set_t *set, int64_t resolution, const tsdb_rollup_point_t **points,
                            size_t *n)
{
    if (!set || set->gstart >= set->ne) return STRATA_EINVAL;
    if (resolution != TSDB_ROLLUP_5M && resolution != TSDB_ROLLUP_1H) return STRATA_EINVAL;
    if (set->loaded && set->err) return set->err;
    set->nroll = 0;
    /* Stored rollups are only exact when the sources do not overlap in time
     * (each sample lives in exactly one of them); otherwise recompute from
     * the merged samples. */
    int overlap = set->lazy_head; /* (or a block whose 1h rollups do not fit: below) */
    const int64_t zero_run = set->db->opts.rollup_zero_run_ms;
    int64_t prev_end = INT64_MIN;
    for (size_t g = set->gstart; g < set->gend && !overlap; g++) {
        const sel_entry_t *e = &set->e[g];
        int64_t a, b;
        if (e->src >= 0) {
            const tsdb_block_series_t *bs = &set->blks[e->src]->series[e->id];
            /* 1h rollups of a version 1 block lack fields; those built with
             * another zero-run minimum count other runs: recomputed */
            const tsdb_block_t *blk = set->blks[e->src];
            if (resolution == TSDB_ROLLUP_1H && (blk->version < 2 || blk->zero_run_ms != zero_run))
                overlap = 1;
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
    for (size_t g = set->gstart; g < set->gend && !rc && !overlap; g++) {
        const sel_entry_t *e = &set->e[g];
        set->nrtmp = 0;
        if (e->src >= 0) {
            tsdb_block_t *b = set->blks[e->src];
            rc = tsdb_block_series_rollups(b, e->id, resolution, &set->pc, &set->rtmp, &set->nrtmp,
                                           &set->rtmp_cap);
            if (rc == STRATA_ECORRUPT) {
                /* a damaged rollup page: recorded, and the points are
                 * computed from the raw samples instead */
                const tsdb_block_series_t *bs = &b->series[e->id];
                int h = resolution == TSDB_ROLLUP_1H;
                /* (points not stored: a chunk page, recorded by the raw read) */
                if (h ? bs->r1_n : bs->r5_n)
                    db_block_page_damaged(set->db, b, h && b->version >= 2 ? 2 : 1,
                                          h ? bs->r1_page : bs->r5_page);
                overlap = 1;
                rc = 0;
                break;
            }
        } else {
            rc = tsdb_rollups_compute(e->hs, e->nhs, resolution, zero_run, &set->rtmp, &set->nrtmp,
                                      &set->rtmp_cap);
        }
        if (!rc) rc = rollup_append(set, set->rtmp, set->nrtmp);
    }
    if (!rc && overlap) {
        set->nroll = 0;
        if ((rc = group_ensure(set)) != 0) return rc;
        set->nrtmp = 0;
        rc = tsdb_rollups_compute(set->samples, set->ns, resolution, zero_run, &set->rtmp, &set->nrtmp,
                                  &set->rtmp_cap);
        if (!rc) rc = rollup_append(set, set->rtmp, set->nrtmp);
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
            p->zero_inner_max = p->zero_inner_long = 0;
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
    if (p) {
        *ids = tsdb_postings_ids(p);
        *n = p->n;
    }
}

static const tsdb_index_ops_t head_index_ops = { head_each_value, head_lookup };

int tsdb_select(tsdb_t *db, const tsdb_matcher_t *matchers, size_t nmatchers, int64_t mint, int64_t maxt,
                tsdb_series_set_t **out)
{
    return tsdb_select_until(db, matchers, nmatchers, mint, maxt, 0, out);
}

int tsdb_select_until(tsdb_t *db, const tsdb_matcher_t *matchers, size_t nmatchers, int64_t mint,
                      int64_t maxt, int64_t deadline_ms, tsdb_series_set_t **out)
{
    if (!db || !out) return STRATA_EINVAL;
    *out = NULL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    tsdb_cmatcher_t *cm;
    int rc = tsdb_matchers_compile(matchers, nmatchers, &cm);
    if (rc) return rc;
    if (deadline_ms && tsdb_mono_ms() > deadline_ms) { /* regcomp took it all */
        tsdb_matchers_free(cm, nmatchers);
        return STRATA_ETIMEOUT;
    }
    for (size_t i = 0; i < nmatchers; i++) cm[i].deadline_ms = deadline_ms;
    querier_params_t p = { .cm = cm,
                           .ncm = nmatchers,
                           .flags = QUERIER_HEAD | QUERIER_SNAP_BLOCKS,
                           .mint = mint,
                           .maxt = maxt,
                           .deadline_ms = deadline_ms };
    rc = querier_build(db, &p, out);
    tsdb_matchers_free(cm, nmatchers);
    return rc;
}
