/*
 * compact.c: maintenance: cutting the head into blocks, compacting blocks
 * and applying retention.
 */
#include "head_internal.h"
#include "strata_fs.h"
#include "strata_log.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Gives the memory a cut or a merge freed back to the system.  Their
 * buffers (series sets, block writer pages, the cut's sample copies) are
 * freed in the maintenance thread's malloc arena, where glibc keeps up to
 * M_TRIM_THRESHOLD free at the top and every free page below it: RSS the
 * next pass may not need (docs/storage.md, "Memory during ingest"). */
static void release_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* ---- cut ---------------------------------------------------------------------------- */

/* What the blocks of one cut hold: per head ref id < n, written[id] counts
 * the samples its series gave; first[id] - 1 is the latest of its entries,
 * each naming one block (blk[win]) and the series' ordinal in it, so a
 * series that gained samples below the boundary during the write can drop
 * exactly the samples the blocks hold (read back), and a failed window can
 * take its entries back. */
typedef struct cut_entry {
    uint32_t id, n, idx, win, next;
} cut_entry_t;

typedef struct cut_log {
    size_t n;
    uint32_t *written, *first;
    cut_entry_t *e;
    size_t ne, ecap;
    tsdb_block_t **blk;
    size_t nblk, blkcap;
} cut_log_t;

/* Adds every series of set to w, logging in cl (when given) what each head series gave. */
static int copy_series(tsdb_series_set_t *set, tsdb_block_writer_t *w, cut_log_t *cl)
{
    int rc;
    uint32_t idx = 0;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl, n;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *smp;
        rc = tsdb_series_set_samples(set, &smp, &n);
        if (!rc) rc = tsdb_block_writer_add(w, l, nl, smp, n);
        if (rc) return rc;
        uint32_t id = querier_current_id(set);
        if (!cl || id >= cl->n || !n) {
            idx += n != 0;
            continue;
        }
        if (cl->ne == cl->ecap) {
            size_t nc = cl->ecap ? cl->ecap * 2 : 1024;
            cut_entry_t *ne = realloc(cl->e, nc * sizeof *ne);
            if (!ne) return STRATA_ENOMEM;
            cl->e = ne;
            cl->ecap = nc;
        }
        cl->e[cl->ne] = (cut_entry_t){ id, (uint32_t)n, idx++, (uint32_t)cl->nblk, cl->first[id] };
        cl->first[id] = (uint32_t)++cl->ne;
        cl->written[id] += (uint32_t)n;
    }
    return rc;
}

/* A chunk page of a block written now holds at most 1/TSDB_PAGE_STORE_SHARE
 * of what the store holds (blocks and head), and at least
 * TSDB_PAGE_MAX_SAMPLES may share a page.  A damaged page loses what it holds,
 * so the cap keeps one damage under 0.25% of the store; small pages compress
 * worse (strata-load's series: +35% chunk bytes at 1024 samples), so a store
 * large enough that 64 KiB pages are a small share keeps them. */
#define TSDB_PAGE_STORE_SHARE 400

static size_t page_samples(tsdb_t *db)
{
    uint64_t total = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++) total += db->blocks[i]->nsamples;
    pthread_mutex_unlock(&db->blocks_mu);
    pthread_rwlock_rdlock(&db->head_lock);
    total += db->head_samples;
    pthread_rwlock_unlock(&db->head_lock);
    total /= TSDB_PAGE_STORE_SHARE;
    return total > SIZE_MAX ? SIZE_MAX : (size_t)total;
}

/* Writes the head samples of [wmin, wmax] into one block and adds it to the
 * block list and to cl; *wrote is set when a block was written.  All or
 * nothing: either the block is durable (files, dir and name fsynced), open
 * and listed, and cl counts it, or nothing of it is left on disk (the writer
 * removes its temp dir; a renamed block that cannot be opened or listed is
 * deleted here) and cl is as before, so the head keeps those samples for
 * the retry and the retry writes one block, not a second copy.  maint_mu
 * held (so the listed block stays until the cut is done). */
static int cut_window(tsdb_t *db, int64_t wmin, int64_t wmax, cut_log_t *cl, int *wrote)
{
    tsdb_series_set_t *set = NULL;
    tsdb_block_writer_t *w = NULL;
    size_t mark = cl->ne;
    querier_params_t p = { .flags = QUERIER_HEAD | QUERIER_LAZY_HEAD, .mint = wmin, .maxt = wmax };
    int rc = querier_build(db, &p, &set);
    if (!rc && cl->nblk == cl->blkcap) {
        size_t nc = cl->blkcap ? cl->blkcap * 2 : 16;
        tsdb_block_t **nb = realloc(cl->blk, nc * sizeof *nb);
        if (!nb)
            rc = STRATA_ENOMEM;
        else {
            cl->blk = nb;
            cl->blkcap = nc;
        }
    }
    size_t cap = rc ? 0 : page_samples(db);
    if (!rc) rc = tsdb_block_writer_new(db->blocks_dir, 1, db->opts.rollup_zero_run_ms, &w);
    if (!rc) tsdb_block_writer_set_page_samples(w, cap);
    if (!rc) rc = copy_series(set, w, cl);
    tsdb_series_set_free(set);
    char id[40];
    if (rc)
        tsdb_block_writer_abort(w);
    else
        rc = tsdb_block_writer_finish(w, id); /* removes what it wrote on failure */
    int renamed = !rc;
    tsdb_block_t *b = NULL;
    if (!rc) rc = tsdb_fail_step();
    if (!rc) rc = tsdb_block_open(db->blocks_dir, id, &b);
    if (!rc) {
        pthread_mutex_lock(&db->blocks_mu);
        rc = db_blocks_add_locked(db, b);
        pthread_mutex_unlock(&db->blocks_mu);
        if (rc) tsdb_block_close(b);
    }
    if (rc && renamed) {
        char *path = strata_path_join(db->blocks_dir, id);
        if (path) tsdb_rm_tree(path);
        free(path);
        strata_error("cut block could not be opened, deleted it", "block=%s err=\"%s\"", id,
                     strata_strerror(rc));
    }
    if (!rc) {
        *wrote = 1;
        cl->blk[cl->nblk++] = b;
        strata_info("head cut into block", "block=%s mint=%lld maxt=%lld series=%llu samples=%llu", b->id,
                    (long long)b->mint, (long long)b->maxt, (unsigned long long)b->nseries,
                    (unsigned long long)b->nsamples);
    } else {
        while (cl->ne > mark) {
            const cut_entry_t *e = &cl->e[--cl->ne];
            cl->written[e->id] -= e->n;
            cl->first[e->id] = e->next;
        }
    }
    return rc == STRATA_ENOTFOUND && !renamed ? 0 : rc; /* nothing in this window */
}

static int cmp_sample_t(const void *a, const void *b)
{
    int64_t x = ((const tsdb_sample_t *)a)->t, y = ((const tsdb_sample_t *)b)->t;
    return (x > y) - (x < y);
}

/* lo[0..*nlo) (sorted head samples of series id below the boundary) loses
 * the samples the cut's blocks hold; what stays arrived during the write. */
static int cut_keep_unwritten(const cut_log_t *cl, uint32_t id, tsdb_page_cache_t *pc, tsdb_sample_t *lo,
                              size_t *nlo, tsdb_sample_t **bb, size_t *bn, size_t *bcap)
{
    *bn = 0;
    for (uint32_t k = cl->first[id]; k; k = cl->e[k - 1].next) {
        const cut_entry_t *e = &cl->e[k - 1];
        int rc = tsdb_block_series_samples(cl->blk[e->win], e->idx, INT64_MIN, INT64_MAX, pc, bb, bn, bcap);
        if (rc) return rc;
    }
    qsort(*bb, *bn, sizeof **bb, cmp_sample_t);
    size_t w = 0, j = 0;
    for (size_t i = 0; i < *nlo; i++) {
        while (j < *bn && (*bb)[j].t < lo[i].t) j++;
        if (j < *bn && (*bb)[j].t == lo[i].t) continue; /* the block has it */
        lo[w++] = lo[i];
    }
    *nlo = w;
    return 0;
}

/* The aligned block_duration window holding t: its start, or INT64_MIN for
 * t below the lowest aligned start an int64 holds (that window is shorter). */
static int64_t window_start(int64_t t, int64_t bd)
{
    const int64_t lo = INT64_MIN / bd * bd; /* division truncates towards zero */
    return t < lo ? INT64_MIN : tsdb_floor_div(t, bd) * bd;
}

/* The last millisecond of the window starting at ws, at most last (ws <= last). */
static int64_t window_end(int64_t ws, int64_t bd, int64_t last)
{
    const int64_t lo = INT64_MIN / bd * bd;
    if (ws < lo) return lo - 1 < last ? lo - 1 : last;
    return (uint64_t)last - (uint64_t)ws < (uint64_t)bd ? last : ws + bd - 1;
}

/* The oldest head sample newer than after, in *out (INT64_MAX: none).  Read
 * from the chunk headers and buffers; a sealed chunk spanning after is
 * decoded. */
static int head_next_time(tsdb_t *db, int64_t after, int64_t *out)
{
    int64_t best = INT64_MAX;
    tsdb_sample_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&db->head_lock);
    for (uint32_t r = 0; !rc && r < db->next_ref; r++) {
        const hseries_t *s = db->series[r];
        if (!s || s->maxt <= after) continue;
        hchunk_t ch;
        for (uint32_t off = 0; head_chunk_next(s, &off, &ch);) {
            if (ch.maxt <= after) continue;
            if (ch.mint > after) {
                if (ch.mint < best) best = ch.mint;
            } else {
                size_t n = 0;
                rc = head_series_read(s, after + 1, ch.maxt, &buf, &n, &cap);
                if (!rc && n && buf[0].t < best) best = buf[0].t;
            }
            break;
        }
        const tsdb_sample_t *raw = head_raw(s);
        for (uint32_t k = 0; k < s->nraw; k++)
            if (raw[k].t > after) {
                if (raw[k].t < best) best = raw[k].t;
                break;
            }
        for (uint32_t k = 0; k < s->nooo; k++)
            if (s->ooo[k].t > after) {
                if (s->ooo[k].t < best) best = s->ooo[k].t;
                break;
            }
    }
    pthread_rwlock_unlock(&db->head_lock);
    free(buf);
    *out = best;
    return rc;
}

/* Empty windows a cut may skip before the head counts as far out of range. */
#define FAR_GAP_WINDOWS 1000

/* Logs once per open db when the head holds data far outside the range a
 * store expects: before the Unix epoch, spread over more than the retention
 * (ingest refuses both; tsdb_append callers may not), or (force) separated
 * by more than FAR_GAP_WINDOWS empty block windows. */
static void warn_far_range_once(tsdb_t *db, int64_t mint, int64_t maxt, int force)
{
    int64_t ret = db->opts.retention_ms;
    int far = force || mint < 0 || (ret > 0 && (uint64_t)maxt - (uint64_t)mint > (uint64_t)ret);
    if (!far || atomic_exchange(&db->warned_far_range, 1)) return;
    strata_warn(
        "head holds samples far outside the expected time range; cutting only the windows that hold data",
        "from=%lld to=%lld retention_ms=%lld", (long long)mint, (long long)maxt, (long long)ret);
}

/* Rotates the WAL and checkpoints it: what a cut that trimmed the head but
 * failed to checkpoint (the disk was full) still owes.  Until then a restart
 * would replay samples the blocks hold.  maint_mu held. */
static int checkpoint_locked(tsdb_t *db)
{
    uint64_t seg = 0;
    pthread_rwlock_wrlock(&db->gate);
    int rc = tsdb_fail_step();
    if (!rc) rc = tsdb_wal_rotate(db->wal, &seg);
    pthread_rwlock_unlock(&db->gate);
    if (!rc) rc = tsdb_fail_step();
    if (!rc) rc = head_wal_checkpoint(db, seg);
    if (!rc) db->cut_pending = 0;
    return rc;
}

/* Writes every head sample with t < boundary into blocks, drops them from
 * the head and checkpoints the WAL once.  maint_mu held.
 *
 * A bounded cut writes one block per aligned block_duration window, so a
 * head that fell far behind (a fast backfill) is drained in one pass with
 * one checkpoint, instead of rewriting the rest of the head into the WAL once
 * per window.  Windows holding nothing are skipped: after an empty window
 * the next one is the window of the oldest head sample past it, so a sample
 * far outside the expected range (at 1 ms, or at INT64_MIN) costs one block
 * of its own, not one empty window per block duration since the epoch.
 * tsdb_cut_head (boundary INT64_MAX) writes one block.
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
    int64_t last = boundary == INT64_MAX ? INT64_MAX : boundary - 1;
    const int64_t bd = db->opts.block_duration_ms;
    cut_log_t cl = { 0 };
    int rc = 0;
    if (db->cut_pending) {
        /* the last cut trimmed the head but did not checkpoint: finish that first */
        rc = checkpoint_locked(db);
        if (rc) return rc;
    }
    pthread_rwlock_rdlock(&db->head_lock);
    cl.n = db->next_ref;
    int64_t head_mint = db->head_mint;
    pthread_rwlock_unlock(&db->head_lock);
    cl.written = calloc(cl.n + 1, sizeof *cl.written);
    cl.first = calloc(cl.n + 1, sizeof *cl.first);
    if (!cl.written || !cl.first) rc = STRATA_ENOMEM;
    int wfail = 0; /* the error of a failed window, once earlier windows were written */
    if (!rc && (boundary == INT64_MAX || head_mint == INT64_MAX)) {
        int wrote = 0;
        rc = cut_window(db, INT64_MIN, last, &cl, &wrote);
    } else if (!rc && head_mint <= last) {
        /* Samples older than the head's mint may only exist when they arrived
         * after the read above: they stay in the head (counts differ). */
        int64_t ws = window_start(head_mint, bd);
        int any = 0;
        for (;;) {
            int64_t we = window_end(ws, bd, last), next = INT64_MAX;
            int wrote = 0;
            rc = cut_window(db, ws, we, &cl, &wrote);
            if (rc && any && ws != INT64_MIN) {
                /* The windows before ws are durable blocks, listed: the head
                 * lets go of them now, or the retry would write them again
                 * (each failed pass one more copy, until the disk is full). */
                wfail = rc;
                rc = 0;
                boundary = ws;
                last = ws - 1;
                break;
            }
            any |= wrote;
            if (rc || we >= last) break;
            if (wrote) {
                ws = we + 1;
                continue;
            }
            rc = head_next_time(db, we, &next);
            if (rc && any) { /* trim what the windows up to we hold, as above */
                wfail = rc;
                rc = 0;
                boundary = we + 1;
                last = we;
                break;
            }
            if (rc || next > last) break;
            if (((uint64_t)next - (uint64_t)we) / (uint64_t)bd > FAR_GAP_WINDOWS)
                warn_far_range_once(db, head_mint, next, 1);
            ws = window_start(next, bd);
        }
    }
    uint64_t seg = 0;
    if (!rc) {
        /* The block is visible: drop its samples from the head.  Readers in
         * between see both copies, which the merge deduplicates. */
        pthread_rwlock_wrlock(&db->gate);
        pthread_rwlock_wrlock(&db->head_lock);
        tsdb_sample_t *buf = NULL, *lo = NULL, *bb = NULL;
        size_t cap = 0, locap = 0, bn = 0, bcap = 0;
        tsdb_page_cache_t pc;
        memset(&pc, 0, sizeof pc);
        db->head_mint = INT64_MAX;
        db->head_maxt = INT64_MIN;
        db->head_series = 0;
        uint64_t kept = 0;
        for (uint32_t r = 0; !rc && r < db->next_ref; r++) {
            hseries_t *s = db->series[r];
            if (!s) continue;
            size_t nlo = 0, n = 0;
            if (boundary == INT64_MAX)
                nlo = head_series_chunk_samples(s) + s->nraw + s->nooo;
            else
                rc = head_series_read(s, INT64_MIN, last, &lo, &nlo, &locap);
            uint32_t wr = r < cl.n ? cl.written[r] : 0;
            if (!rc && nlo && wr && wr != nlo) {
                /* Samples below the boundary arrived during the write: drop
                 * what the blocks hold, keep only those (before, the series
                 * kept everything, and each later pass wrote it all again). */
                if (boundary == INT64_MAX) { /* nlo was only counted: read them (head_series_read appends) */
                    nlo = 0;
                    rc = head_series_read(s, INT64_MIN, last, &lo, &nlo, &locap);
                }
                /* a block that cannot be read back: the series keeps them all, as before */
                if (!rc && cut_keep_unwritten(&cl, r, &pc, lo, &nlo, &bb, &bn, &bcap))
                    strata_warn("cut block unreadable, series keeps its samples below the boundary", "ref=%u",
                                r);
                if (rc) break;
                kept++;
            } else {
                nlo = 0;
            }
            if (!rc && wr) {
                if (boundary != INT64_MAX) rc = head_series_read(s, boundary, INT64_MAX, &buf, &n, &cap);
                if (rc) break;
                db->head_samples -= head_series_chunk_samples(s);
                head_series_free_data(db, s);
                for (size_t k = 0; !rc && k < nlo; k++) rc = head_series_push(db, s, lo[k].t, lo[k].v);
                for (size_t k = 0; !rc && k < n; k++) rc = head_series_push(db, s, buf[k].t, buf[k].v);
            }
            if (!rc && (s->nraw || s->clen || s->nooo)) {
                /* bounds from the chunk headers and buffers: nothing decoded */
                int64_t mn = INT64_MAX, mx = INT64_MIN;
                hchunk_t ch;
                for (uint32_t off = 0; head_chunk_next(s, &off, &ch);) {
                    if (mn == INT64_MAX) mn = ch.mint;
                    mx = ch.maxt;
                }
                if (s->nraw) {
                    const tsdb_sample_t *raw = head_raw(s);
                    if (raw[0].t < mn) mn = raw[0].t;
                    if (raw[s->nraw - 1].t > mx) mx = raw[s->nraw - 1].t;
                }
                if (s->nooo) {
                    if (s->ooo[0].t < mn) mn = s->ooo[0].t;
                    if (s->ooo[s->nooo - 1].t > mx) mx = s->ooo[s->nooo - 1].t;
                }
                db->head_series++;
                if (mn < db->head_mint) db->head_mint = mn;
                if (mx > db->head_maxt) db->head_maxt = mx;
            }
        }
        if (!rc) rc = head_gc(db);
        pthread_rwlock_unlock(&db->head_lock);
        /* The head no longer holds what the blocks hold: until a checkpoint
         * succeeds, every cut first retries it (cut_pending). */
        db->cut_pending = 1;
        if (!rc) rc = tsdb_fail_step();
        if (!rc) rc = tsdb_wal_rotate(db->wal, &seg);
        pthread_rwlock_unlock(&db->gate);
        free(buf);
        free(lo);
        free(bb);
        tsdb_page_cache_free(&pc);
        if (kept)
            strata_info("series kept samples below the cut boundary that arrived during the cut",
                        "series=%llu", (unsigned long long)kept);
    }
    free(cl.written);
    free(cl.first);
    free(cl.e);
    free(cl.blk);
    if (!rc) rc = tsdb_fail_step();
    if (!rc) rc = head_wal_checkpoint(db, seg);
    if (!rc) db->cut_pending = 0;
    if (!rc) rc = wfail;
    release_memory();
    /* a failed system call was logged where it failed */
    if (rc && rc != STRATA_EIO && rc != STRATA_ENOSPC)
        strata_error("head cut failed", "err=\"%s\"", strata_strerror(rc));
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
int compact_cut_if_due_locked(tsdb_t *db)
{
    int64_t bd = db->opts.block_duration_ms;
    if (db->cut_pending) {
        int rc = checkpoint_locked(db); /* even when no cut is due */
        if (rc) return rc;
    }
    for (int guard = 0; guard < 16; guard++) { /* the next pass goes on */
        pthread_rwlock_rdlock(&db->head_lock);
        int64_t mint = db->head_mint, maxt = db->head_maxt;
        pthread_rwlock_unlock(&db->head_lock);
        /* unsigned: the span of a head holding INT64_MIN does not fit an int64 */
        if (mint == INT64_MAX || (uint64_t)maxt - (uint64_t)mint <= (uint64_t)(bd + bd / 2)) return 0;
        warn_far_range_once(db, mint, maxt, 0);
        /* Every window the one-at-a-time rule would cut, in one pass: up to
         * the first aligned boundary at most 1.5 block durations before maxt
         * (maxt - 1.5 bd > mint, so no overflow and boundary > mint). */
        int64_t from = maxt - (bd + bd / 2);
        int64_t boundary = (from / bd + (from % bd > 0)) * bd;
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
    querier_params_t p = { .blks = refs, .nblks = n, .mint = INT64_MIN, .maxt = INT64_MAX };
    int rc = querier_build(db, &p, &set);
    /* Each source page is read once, in order: decompressed into the set's
     * own small ring, not the shared page cache, which a merge of a day of
     * blocks filled to its 64 MiB cap with pages no query asked for (the
     * largest part of the ingest peak at bench-peers' day scale). */
    tsdb_series_set_stream(set);
    size_t cap = rc ? 0 : page_samples(db);
    if (!rc) rc = tsdb_block_writer_new(db->blocks_dir, level + 1, db->opts.rollup_zero_run_ms, &w);
    if (!rc) tsdb_block_writer_set_page_samples(w, cap);
    if (!rc) rc = copy_series(set, w, NULL);
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
    if (!rc && nb) rc = db_blocks_add_locked(db, nb);
    if (!rc)
        for (size_t i = 0; i < n; i++) {
            grp[i]->dropped = 1;
            db_blocks_remove_locked(db, grp[i]);
        }
    pthread_mutex_unlock(&db->blocks_mu);
    if (!rc && nb)
        strata_info("blocks compacted", "block=%s sources=%zu mint=%lld maxt=%lld", nb->id, n,
                    (long long)nb->mint, (long long)nb->maxt);
    tsdb_series_set_free(set); /* drops refs[] */
    release_memory();
    if (rc && rc != STRATA_EIO && rc != STRATA_ENOSPC)
        strata_error("compaction failed", "err=\"%s\"", strata_strerror(rc));
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

int compact_run_locked(tsdb_t *db)
{
    int64_t ranges[3];
    size_t nranges = compaction_ranges(db, ranges);
    int64_t range = ranges[0];
    for (int guard = 0; guard < 1000; guard++) {
        tsdb_block_t **bl = NULL;
        size_t n = 0;
        int rc = db_blocks_snapshot(db, INT64_MIN, INT64_MAX, &bl, &n);
        if (rc) return rc;
        /* a block with a damaged page stays as it is: merging it would drop
         * what the page held for good (docs/storage.md, "Damaged pages") */
        size_t keep = 0;
        for (size_t i = 0; i < n; i++) {
            if (db_block_damaged(db, bl[i]))
                db_block_unref(db, bl[i]);
            else
                bl[keep++] = bl[i];
        }
        n = keep;
        size_t gs = 0, ge = 0;
        /* 1: blocks whose time ranges overlap (out-of-order data, crash leftovers) */
        for (size_t i = 0; i < n && ge - gs < 2; i++) {
            int64_t end = bl[i]->maxt;
            size_t j = i + 1;
            while (j < n && bl[j]->mint <= end) {
                if (bl[j]->maxt > end) end = bl[j]->maxt;
                j++;
            }
            if (j - i >= 2) {
                gs = i;
                ge = j;
            }
        }
        /* 2: adjacent blocks inside one aligned window of 3 block durations */
        for (size_t i = 0; i < n && ge - gs < 2; i++) {
            int64_t win = tsdb_floor_div(bl[i]->mint, range);
            if (tsdb_floor_div(bl[i]->maxt, range) != win) continue;
            size_t j = i + 1;
            while (j < n && tsdb_floor_div(bl[j]->mint, range) == win &&
                   tsdb_floor_div(bl[j]->maxt, range) == win)
                j++;
            if (j - i >= 2) {
                gs = i;
                ge = j;
            }
        }
        /* 3: the longer windows, once complete (a block already ends past
         * them), so a growing window is not rewritten at every new block */
        int64_t newest = INT64_MIN;
        for (size_t i = 0; i < n; i++)
            if (bl[i]->maxt > newest) newest = bl[i]->maxt;
        for (size_t k = 1; k < nranges && ge - gs < 2; k++) {
            for (size_t i = 0; i < n && ge - gs < 2; i++) {
                int64_t win = tsdb_floor_div(bl[i]->mint, ranges[k]);
                if (tsdb_floor_div(bl[i]->maxt, ranges[k]) != win || newest < (win + 1) * ranges[k]) continue;
                size_t j = i + 1;
                while (j < n && tsdb_floor_div(bl[j]->mint, ranges[k]) == win &&
                       tsdb_floor_div(bl[j]->maxt, ranges[k]) == win)
                    j++;
                if (j - i >= 2) {
                    gs = i;
                    ge = j;
                }
            }
        }
        if (ge - gs >= 2) rc = merge_blocks(db, bl + gs, ge - gs);
        for (size_t i = 0; i < n; i++) db_block_unref(db, bl[i]);
        free(bl);
        if (rc == STRATA_ECORRUPT) {
            rc = 0;
            continue;
        } /* that block has a damaged page now: the next plan leaves it out */
        if (rc || ge - gs < 2) return rc;
    }
    return 0;
}

void compact_retention_locked(tsdb_t *db)
{
    pthread_rwlock_rdlock(&db->head_lock);
    int64_t newest = db->head_maxt;
    pthread_rwlock_unlock(&db->head_lock);
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++)
        if (db->blocks[i]->maxt > newest) newest = db->blocks[i]->maxt;
    if (db->opts.retention_ms > 0 && newest != INT64_MIN) {
        for (size_t i = 0; i < db->nblocks;) {
            tsdb_block_t *b = db->blocks[i];
            if (b->maxt < newest - db->opts.retention_ms) {
                strata_info("block past retention time, dropping", "block=%s maxt=%lld", b->id,
                            (long long)b->maxt);
                b->dropped = 1;
                db_blocks_remove_locked(db, b);
            } else {
                i++;
            }
        }
    }
    if (db->opts.retention_bytes > 0) {
        uint64_t total = 0;
        for (size_t i = 0; i < db->nblocks; i++) total += db->blocks[i]->bytes;
        while (db->nblocks && total > db->opts.retention_bytes) {
            tsdb_block_t *b = db->blocks[0]; /* sorted by mint: the oldest */
            total -= b->bytes;
            strata_info("block over retention size, dropping", "block=%s bytes=%llu", b->id,
                        (unsigned long long)b->bytes);
            b->dropped = 1;
            db_blocks_remove_locked(db, b);
        }
    }
    pthread_mutex_unlock(&db->blocks_mu);
}

int tsdb_compact(tsdb_t *db)
{
    if (!db) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;
    pthread_mutex_lock(&db->maint_mu);
    int rc = compact_cut_if_due_locked(db);
    if (!rc) rc = compact_run_locked(db);
    compact_retention_locked(db);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}
