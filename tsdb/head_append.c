/*
 * head_append.c: tsdb_append: classifying a batch's samples against the
 * head, logging them to the WAL, then making them visible.
 */
#include "head_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- append ------------------------------------------------------------------------- */

/* What tsdb_append does with one sample (tsdb.h, tsdb_append_result_t). */
enum sample_verdict {
    SAMPLE_ACCEPT,    /* appended */
    SAMPLE_DUPLICATE, /* same time and value bits as the stored one: a no-op */
    SAMPLE_CONFLICT,  /* same time, other value bits: rejected (STRATA_EDUPTS) */
    SAMPLE_TOO_OLD,   /* beyond the out-of-order window: rejected (STRATA_ETOOOLD) */
};

typedef struct {
    int64_t t;
    double v;
    uint32_t idx;
} isample_t;
static int isample_cmp(const void *x, const void *y)
{
    const isample_t *a = x, *b = y;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

int tsdb_append(tsdb_t *db, const tsdb_series_input_t *in, size_t nseries, tsdb_append_result_t *res)
{
    return tsdb_append_refs(db, in, nseries, NULL, res);
}

/* The series refs[i] names (ref + 1, as tsdb_append_refs hands them out), or
 * NULL.  head_lock held. */
static hseries_t *series_by_ref(const tsdb_t *db, uint32_t r)
{
    return r && r - 1 < db->series_cap ? db->series[r - 1] : NULL;
}

/* head_smap_prefetch's stages for a series known by ref r (0: by hash h):
 * the table entry, then the series' header and open buffer. */
static inline void prefetch(const tsdb_t *db, uint64_t h, uint32_t r, int stage)
{
    if (!r) {
        head_smap_prefetch(db, h, stage);
        return;
    }
    if (r - 1 >= db->series_cap) return;
    if (stage == 0) {
        __builtin_prefetch(&db->series[r - 1]);
    } else if (stage == 1) {
        const hseries_t *s = db->series[r - 1];
        if (s) __builtin_prefetch(s);
    } else {
        const hseries_t *s = db->series[r - 1];
        if (s) __builtin_prefetch(&head_raw(s)[s->nraw]);
    }
}

int tsdb_append_refs(tsdb_t *db, const tsdb_series_input_t *in, size_t nseries, uint32_t *hint,
                     tsdb_append_result_t *res)
{
    tsdb_append_result_t local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    res->first_rejected_series = SIZE_MAX;
    if (!db || (nseries && !in)) return STRATA_EINVAL;
    if (atomic_load(&db->closed)) return STRATA_ECLOSED;

    size_t total = 0;
    for (size_t i = 0; i < nseries; i++) total += in[i].nsamples;
    size_t nstr = 0;
    for (size_t i = 0; i < nseries; i++) nstr += 2 * (in[i].nlabels <= TSDB_MAX_LABELS ? in[i].nlabels : 0);
    /* One block for the request's scratch arrays, widest alignment first
     * (each array's size is a multiple of the next one's alignment). */
    _Static_assert(_Alignof(tsdb_wal_sample_t) <= _Alignof(max_align_t) &&
                       sizeof(tsdb_wal_sample_t) % _Alignof(uint64_t) == 0 &&
                       _Alignof(size_t) <= _Alignof(uint64_t) && sizeof(size_t) % _Alignof(uint32_t) == 0,
                   "scratch layout");
    size_t sz_acc = (total + 1) * sizeof(tsdb_wal_sample_t), sz_n8 = (nseries + 1) * sizeof(uint64_t),
           sz_lat = (nseries + 1) * sizeof(size_t), sz_lens = (nstr + 1) * sizeof(size_t),
           sz_refs = (nseries + 1) * sizeof(uint32_t);
    char *scratch = malloc(sz_acc + sz_n8 + sz_lat + sz_lens + sz_refs + nseries + 1);
    tsdb_wal_sample_t *acc = (tsdb_wal_sample_t *)(void *)scratch;
    uint64_t *hashes = scratch ? (uint64_t *)(void *)(scratch + sz_acc) : NULL;
    size_t *lens_at = scratch ? (size_t *)(void *)(scratch + sz_acc + sz_n8) : NULL;
    size_t *lens = scratch ? (size_t *)(void *)(scratch + sz_acc + sz_n8 + sz_lat) : NULL;
    uint32_t *refs = scratch ? (uint32_t *)(void *)(scratch + sz_acc + sz_n8 + sz_lat + sz_lens) : NULL;
    uint8_t *log_series = scratch ? (uint8_t *)(scratch + sz_acc + sz_n8 + sz_lat + sz_lens + sz_refs) : NULL;
    if (log_series) memset(log_series, 0, nseries + 1);
    isample_t *srt = NULL;
    size_t srt_cap = 0, nacc = 0, nlog = 0;
    int rc = scratch ? 0 : STRATA_ENOMEM;
    int replay = atomic_load(&db->replaying);

    /* Hashing needs no lock: done first, it shortens the exclusive section. */
    size_t nvalid = 0;
    for (size_t off = 0; !rc && nvalid < nseries; nvalid++) {
        const tsdb_series_input_t *si = &in[nvalid];
        lens_at[nvalid] = off;
        hashes[nvalid] = 0;
        if (hint && hint[nvalid]) {
            if (si->labels && si->nlabels > TSDB_MAX_LABELS) break;
            if (si->nsamples && !si->samples) break;
            off += si->labels ? 2 * si->nlabels : 0;
            continue; /* known by its ref: nothing to hash */
        }
        if (!si->nlabels || !si->labels || si->nlabels > TSDB_MAX_LABELS || (si->nsamples && !si->samples))
            break;
        hashes[nvalid] = head_label_set_hash(si->labels, si->nlabels, lens + off);
        off += 2 * si->nlabels;
    }

    pthread_rwlock_rdlock(&db->gate);
    int locked = !rc;
    if (locked) pthread_rwlock_wrlock(&db->head_lock);
    /* A ref given without labels must name a live, logged series: checked
     * before anything changes, so the caller can simply retry with labels. */
    for (size_t i = 0; !rc && hint && i < nvalid; i++) {
        if (!hint[i] || in[i].labels) continue;
        const hseries_t *s = series_by_ref(db, hint[i]);
        if (!s || !s->logged) rc = STRATA_ENOTFOUND;
    }
    /* The series of a batch are scattered over the table and the heap: the
     * slots PF_SLOT series ahead and their series PF_SERIES ahead are
     * prefetched so the misses overlap instead of stalling one by one. */
    enum { PF_SLOT = 16, PF_SERIES = 8, PF_STRINGS = 4 };
    for (size_t i = 0; !rc && i < PF_SLOT && i < nvalid; i++) prefetch(db, hashes[i], hint ? hint[i] : 0, 0);
    for (size_t i = 0; !rc && i < PF_SERIES && i < nvalid; i++)
        prefetch(db, hashes[i], hint ? hint[i] : 0, 1);
    for (size_t i = 0; !rc && i < PF_STRINGS && i < nvalid; i++)
        prefetch(db, hashes[i], hint ? hint[i] : 0, 2);
    for (size_t i = 0; !rc && i < nseries; i++) {
        const tsdb_series_input_t *si = &in[i];
        if (i >= nvalid) {
            rc = STRATA_EINVAL;
            break;
        }
        if (i + PF_SLOT < nvalid) prefetch(db, hashes[i + PF_SLOT], hint ? hint[i + PF_SLOT] : 0, 0);
        if (i + PF_SERIES < nvalid) prefetch(db, hashes[i + PF_SERIES], hint ? hint[i + PF_SERIES] : 0, 1);
        if (i + PF_STRINGS < nvalid) prefetch(db, hashes[i + PF_STRINGS], hint ? hint[i + PF_STRINGS] : 0, 2);
        uint64_t h = hashes[i];
        hseries_t *s = hint && hint[i] ? series_by_ref(db, hint[i]) : NULL;
        if (!s && hint && hint[i]) {
            /* dropped since (labels given, checked above): find it anew */
            h = head_label_set_hash(si->labels, si->nlabels, lens + lens_at[i]);
        }
        if (!s) s = head_series_lookup(db, si->labels, lens + lens_at[i], si->nlabels, h);
        if (!s) {
            if ((rc = head_series_create(db, si->labels, si->nlabels, h, UINT32_MAX, &s))) break;
            res->new_series++;
        }
        refs[i] = s->ref;
        if (hint) hint[i] = s->ref + 1;
        if (!s->logged) {
            log_series[i] = 1;
            nlog++;
        }
        if (si->nsamples > srt_cap) {
            isample_t *ns = realloc(srt, si->nsamples * sizeof *ns);
            if (!ns) {
                rc = STRATA_ENOMEM;
                break;
            }
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
            uint64_t bits = enc_dbits(srt[k].v);
            double stored;
            enum sample_verdict verdict;
            if (have_prev && t == pt)
                verdict = bits == pbits ? SAMPLE_DUPLICATE : SAMPLE_CONFLICT;
            else if (vmax == INT64_MIN || t > vmax)
                verdict = SAMPLE_ACCEPT;
            else if (head_series_find(s, t, &stored))
                verdict = enc_dbits(stored) == bits ? SAMPLE_DUPLICATE : SAMPLE_CONFLICT,
                bits = enc_dbits(stored);
            else if (!replay && t < vmax && (uint64_t)vmax - (uint64_t)t > (uint64_t)db->opts.ooo_window_ms)
                verdict = SAMPLE_TOO_OLD;
            else
                verdict = SAMPLE_ACCEPT;
            if (verdict == SAMPLE_ACCEPT) {
                acc[nacc++] = (tsdb_wal_sample_t){ s->ref, t, srt[k].v };
                res->appended++;
                if (vmax == INT64_MIN || t > vmax) vmax = t;
            } else if (verdict == SAMPLE_DUPLICATE) {
                res->duplicates++;
            } else {
                if (verdict == SAMPLE_CONFLICT)
                    res->conflicting++;
                else
                    res->too_old++;
                if (res->first_rejected_series == SIZE_MAX) {
                    res->first_rejected_series = i;
                    res->first_rejected_error = verdict == SAMPLE_CONFLICT ? STRATA_EDUPTS : STRATA_ETOOOLD;
                }
            }
            if (verdict != SAMPLE_TOO_OLD) {
                have_prev = 1;
                pt = t;
                pbits = bits;
            }
        }
    }
    if (locked) pthread_rwlock_unlock(&db->head_lock);
    free(srt);

    if (!rc && (nacc || nlog)) {
        /* The WAL record is built and written without the head lock, so
         * concurrent batches overlap here and share an fsync. */
        tsdb_wal_batch_t batch;
        tsdb_wal_batch_init(&batch);
        /* Each SERIES record is written twice, back to back: it is the only
         * record naming the ref until the next checkpoint, so a flip in it
         * made every later sample of the series an orphan.  Replay skips a
         * damaged record and takes the other; a repeated one is a no-op. */
        for (size_t i = 0; !rc && i < nseries; i++)
            for (int copy = 0; !rc && copy < 2 && log_series[i]; copy++)
                rc = tsdb_wal_batch_add_series(&batch, refs[i], in[i].labels, in[i].nlabels);
        if (!rc && nacc) rc = tsdb_wal_batch_add_samples(&batch, acc, nacc);
        if (!rc) rc = tsdb_wal_append(db->wal, &batch);
        tsdb_wal_batch_free(&batch);
        if (!rc) {
            pthread_rwlock_wrlock(&db->head_lock);
            for (size_t i = 0; i < nseries; i++)
                if (log_series[i] && db->series[refs[i]]) db->series[refs[i]]->logged = 1;
            for (size_t k = 0; !rc && k < nacc; k++)
                rc = head_series_add(db, db->series[acc[k].ref], acc[k].t, acc[k].v);
            pthread_rwlock_unlock(&db->head_lock);
            if (!rc) atomic_fetch_add(&db->samples_appended, nacc);
        }
    }
    pthread_rwlock_unlock(&db->gate);
    free(scratch);
    if (rc) {
        size_t nr = res->first_rejected_series;
        int nre = res->first_rejected_error;
        memset(res, 0, sizeof *res);
        res->first_rejected_series = nr;
        res->first_rejected_error = nre;
    }
    return rc;
}
