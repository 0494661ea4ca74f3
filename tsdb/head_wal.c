/*
 * head_wal.c: the head's side of the WAL: rebuilding the head from the WAL
 * at open (replay) and writing checkpoints after a cut.
 */
#include "head_internal.h"
#include "strata_log.h"

#include <stdlib.h>
#include <string.h>

/* ---- WAL plumbing ------------------------------------------------------------ */

void head_wal_fsync_observer(double seconds, void *ctx)
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

int head_wal_replay_series(void *ctx, uint64_t ref, const tsdb_label_t *labels, size_t n)
{
    tsdb_t *db = ctx;
    if (n == 0 || n > TSDB_MAX_LABELS) return 0; /* never written by tsdb_append */
    size_t lens[2 * n];
    uint64_t h = head_label_set_hash(labels, n, lens);
    hseries_t *s = head_series_lookup(db, labels, lens, n, h);
    int rc = 0;
    if (!s && ref < UINT32_MAX - 1 && (ref >= db->series_cap || !db->series[ref]))
        rc = head_series_create(db, labels, n, h, (uint32_t)ref, &s);
    else if (!s)
        rc = head_series_create(db, labels, n, h, UINT32_MAX, &s);
    if (rc) return rc;
    s->logged = 1;
    if (s->ref != ref) {
        /* the same label set under another ref (recreated after a cut) */
        for (size_t i = 0; i < db->nalias; i++)
            if (db->alias[i].from == ref) {
                db->alias[i].to = s->ref;
                return 0;
            }
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

int head_wal_replay_samples(void *ctx, const tsdb_wal_sample_t *smp, size_t n)
{
    tsdb_t *db = ctx;
    for (size_t i = 0; i < n; i++) {
        hseries_t *s = replay_series(db, smp[i].ref);
        if (!s) continue; /* its series record was lost with a torn segment */
        int rc = head_series_add(db, s, smp[i].t, smp[i].v);
        if (rc) return rc;
    }
    return 0;
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

int head_wal_checkpoint(tsdb_t *db, uint64_t seg)
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
        if (r >= db->next_ref) {
            pthread_rwlock_unlock(&db->head_lock);
            break;
        }
        hseries_t *s = db->series[r];
        size_t n = 0;
        if (s && s->nlabels > lab_cap) {
            tsdb_label_t *nl = realloc(lab, s->nlabels * sizeof *nl);
            if (!nl)
                rc = STRATA_ENOMEM;
            else {
                lab = nl;
                lab_cap = s->nlabels;
            }
        }
        if (s && !rc) {
            for (uint16_t i = 0; i < s->nlabels; i++)
                lab[i] = (tsdb_label_t){ tsdb_symtab_str(&db->syms, s->labels[2 * i]),
                                         tsdb_symtab_str(&db->syms, s->labels[2 * i + 1]) };
            rc = head_series_read(s, INT64_MIN, INT64_MAX, &buf, &n, &cap);
        }
        uint16_t nl = s ? s->nlabels : 0;
        pthread_rwlock_unlock(&db->head_lock);
        if (!s || rc) continue;
        rc = tsdb_wal_batch_add_series(&ckpt, r, lab, nl);
        if (!rc && n) {
            if (n > ws_cap) {
                tsdb_wal_sample_t *nw = realloc(ws, n * sizeof *nw);
                if (!nw) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                ws = nw;
                ws_cap = n;
            }
            for (size_t k = 0; k < n; k++) ws[k] = (tsdb_wal_sample_t){ r, buf[k].t, buf[k].v };
            rc = tsdb_wal_batch_add_copies(&smp, ws, n);
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
