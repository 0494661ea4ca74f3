/*
 * db.c: the database object: options, open and close, the block list, the
 * background maintenance thread, stats and label values.
 */
#include "head_internal.h"
#include "strata_fs.h"
#include "strata_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- blocks list ------------------------------------------------------------------ */

/* After the last reference: closes the block and removes its dir when dropped. */
static void block_release(tsdb_block_t *b)
{
    char *path = b->dropped ? strdup(b->path) : NULL;
    tsdb_block_close(b);
    if (!path) return;
    tsdb_rm_tree(path);
    free(path);
}

/* Drops a reference; the last one closes the block and removes or sets aside its dir. */
void db_block_unref_locked(tsdb_t *db, tsdb_block_t *b)
{
    (void)db;
    if (--b->refs == 0) block_release(b);
}

void db_block_unref(tsdb_t *db, tsdb_block_t *b)
{
    pthread_mutex_lock(&db->blocks_mu);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&db->blocks_mu);
    /* The last reference: the list holds one, so the block is no longer listed
     * and nobody can take another.  Closing it (dropping its pages from the
     * page cache) and removing its directory happen without blocks_mu, which
     * every query takes to snapshot the block list (docs/metrics.md, "Under
     * mixed load"). */
    if (last) block_release(b);
}

void db_blocks_remove_locked(tsdb_t *db, tsdb_block_t *b)
{
    for (size_t i = 0; i < db->nblocks; i++) {
        if (db->blocks[i] != b) continue;
        memmove(db->blocks + i, db->blocks + i + 1, (db->nblocks - i - 1) * sizeof *db->blocks);
        db->nblocks--;
        db_block_unref_locked(db, b);
        return;
    }
}

int db_blocks_add_locked(tsdb_t *db, tsdb_block_t *b)
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
    b->pages_rebuilt = &db->block_pages_rebuilt;
    /* what its open repaired, counted once (the flags are then cleared) */
    atomic_fetch_add(&db->block_meta_repaired, b->repaired_meta);
    atomic_fetch_add(&db->block_index_repaired, b->repaired_index);
    atomic_fetch_add(&db->block_copy_repaired, b->repaired_copy);
    b->repaired_meta = b->repaired_index = b->repaired_copy = 0;
    return 0;
}

void db_block_page_damaged(tsdb_t *db, tsdb_block_t *b, int file, uint64_t page)
{
    uint64_t key = page * 4 + (uint64_t)file;
    pthread_mutex_lock(&db->blocks_mu);
    size_t lo = 0, hi = b->nbad;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->bad_pages[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    int known = lo < b->nbad && b->bad_pages[lo] == key;
    if (!known && b->nbad == b->bad_cap) {
        size_t nc = b->bad_cap ? b->bad_cap * 2 : 8;
        uint64_t *nb = realloc(b->bad_pages, nc * sizeof *nb);
        if (nb) {
            b->bad_pages = nb;
            b->bad_cap = nc;
        }
    }
    if (!known && b->nbad < b->bad_cap) {
        memmove(b->bad_pages + lo + 1, b->bad_pages + lo, (b->nbad - lo) * sizeof *b->bad_pages);
        b->bad_pages[lo] = key;
        b->nbad++;
    }
    pthread_mutex_unlock(&db->blocks_mu);
    if (known) return;
    atomic_fetch_add(&db->block_pages_damaged, 1);
    static const char *const files[3] = { "chunks", "rollups", "rollups1h" };
    strata_error("block page damaged, reads skip it", "block=%s file=%s page=%llu", b->id,
                 files[file >= 0 && file < 3 ? file : 0], (unsigned long long)page);
}

int db_block_damaged(tsdb_t *db, const tsdb_block_t *b)
{
    pthread_mutex_lock(&db->blocks_mu);
    int d = b->nbad > 0;
    pthread_mutex_unlock(&db->blocks_mu);
    return d;
}

/* Snapshot of the live blocks overlapping [mint, maxt], each referenced. */
int db_blocks_snapshot(tsdb_t *db, int64_t mint, int64_t maxt, tsdb_block_t ***out, size_t *n)
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
        if (compact_cut_if_due_locked(db) == 0) compact_run_locked(db);
        compact_retention_locked(db);
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
    o->page_cache_bytes = TSDB_PAGE_CACHE_DEFAULT_BYTES;
    o->rollup_zero_run_ms = TSDB_ROLLUP_ZERO_RUN_DEFAULT_MS;
}

static int load_blocks(tsdb_t *db)
{
    DIR *d = opendir(db->blocks_dir);
    if (!d) return strata_io_error("cannot list blocks dir", db->blocks_dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp")) {
            char *p = strata_path_join(db->blocks_dir, e->d_name);
            if (p) {
                tsdb_rm_tree(p);
                free(p);
            }
            continue;
        }
        tsdb_block_t *b = NULL;
        int brc = tsdb_block_open(db->blocks_dir, e->d_name, &b);
        if (brc == STRATA_ECORRUPT || brc == STRATA_EVERSION) {
            strata_error("block corrupt at open, moving it aside", "block=%s err=\"%s\"", e->d_name,
                         strata_strerror(brc));
            atomic_fetch_add(&db->blocks_corrupt, 1);
            mkdir(db->corrupt_dir, 0755);
            char *src = strata_path_join(db->blocks_dir, e->d_name),
                 *dst = strata_path_join(db->corrupt_dir, e->d_name);
            if (src && dst && rename(src, dst) != 0)
                strata_error("cannot move corrupt block aside", "block=%s err=\"%s\"", e->d_name,
                             strerror(errno));
            free(src);
            free(dst);
            continue;
        }
        if (brc) {
            rc = brc;
            break;
        }
        pthread_mutex_lock(&db->blocks_mu);
        rc = db_blocks_add_locked(db, b);
        pthread_mutex_unlock(&db->blocks_mu);
        if (rc) tsdb_block_close(b);
    }
    closedir(d);
    return rc;
}

static void db_free(tsdb_t *db)
{
    pthread_mutex_lock(&db->blocks_mu);
    while (db->nblocks) db_blocks_remove_locked(db, db->blocks[db->nblocks - 1]);
    pthread_mutex_unlock(&db->blocks_mu);
    free(db->blocks);
    for (uint32_t r = 0; r < db->next_ref && db->series; r++) {
        hseries_t *s = db->series[r];
        if (!s) continue;
        free(s->cbuf);
        free(s->ooo);
        free(s);
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
    if (!db->opts.page_cache_bytes) db->opts.page_cache_bytes = def.page_cache_bytes;
    if (db->opts.rollup_zero_run_ms <= 0) db->opts.rollup_zero_run_ms = def.rollup_zero_run_ms;
    tsdb_page_cache_set_limit(db->opts.page_cache_bytes);
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
    db->blocks_dir = db->dir ? strata_path_join(db->dir, "blocks") : NULL;
    db->corrupt_dir = db->dir ? strata_path_join(db->dir, "corrupt") : NULL;
    if (!rc && (!db->dir || !db->blocks_dir || !db->corrupt_dir)) rc = STRATA_ENOMEM;
    if (!rc && mkdir(db->dir, 0755) != 0 && errno != EEXIST)
        rc = strata_io_error("cannot create data dir", db->dir);
    if (!rc) {
        char *lp = strata_path_join(db->dir, "LOCK");
        db->lock_fd = lp ? open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (!lp)
            rc = STRATA_ENOMEM;
        else if (db->lock_fd < 0)
            rc = strata_io_error("cannot open the lock file", lp);
        else if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK)
                rc = strata_io_error("cannot lock the data directory", lp);
            else {
                rc = STRATA_ELOCKED;
                strata_error("data directory locked by another process", "dir=%s", db->dir);
            }
        }
        free(lp);
    }
    if (!rc && mkdir(db->blocks_dir, 0755) != 0 && errno != EEXIST)
        rc = strata_io_error("cannot create blocks dir", db->blocks_dir);
    if (!rc) rc = load_blocks(db);
    if (!rc) {
        tsdb_wal_options_t wo = { db->opts.fsync,
                                  db->opts.fsync_interval_ms,
                                  db->opts.wal_segment_bytes,
                                  head_wal_fsync_observer,
                                  db,
                                  db->opts.wal_retain };
        tsdb_wal_replay_ops_t ops = { head_wal_replay_series, head_wal_replay_samples, db, 0 };
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
            strata_info("wal replayed",
                        "dir=%s records=%llu series=%llu samples=%llu corrupt=%llu head_series=%llu", db->dir,
                        (unsigned long long)st.records, (unsigned long long)st.series,
                        (unsigned long long)st.samples, (unsigned long long)st.corrupt_records,
                        (unsigned long long)db->head_series);
    }
    if (!rc && db->opts.background) {
        if (pthread_create(&db->bg, NULL, bg_main, db) != 0)
            rc = STRATA_ENOMEM;
        else
            db->bg_started = 1;
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

int64_t tsdb_rollup_zero_run_ms(const tsdb_t *db)
{
    return db ? db->opts.rollup_zero_run_ms : TSDB_ROLLUP_ZERO_RUN_DEFAULT_MS;
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
    st->head_bytes = db->head_bytes + db->hidx.bytes + db->syms.bytes + db->smap_slots * sizeof *db->smap;
    if (db->head_samples) {
        st->min_time = db->head_mint;
        st->max_time = db->head_maxt;
    }
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
    st->block_pages_damaged = atomic_load(&db->block_pages_damaged);
    st->block_pages_rebuilt = atomic_load(&db->block_pages_rebuilt);
    st->block_meta_repaired = atomic_load(&db->block_meta_repaired);
    st->block_index_repaired = atomic_load(&db->block_index_repaired);
    st->block_copy_repaired = atomic_load(&db->block_copy_repaired);
    st->replaying = atomic_load(&db->replaying);
}

/* ---- label values ------------------------------------------------------------------------ */

struct lv_ctx {
    tsdb_t *db;
    const char **v;
    size_t n, cap;
    int rc;
};

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
    (void)ids;
    (void)n;
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
    int rc = db_blocks_snapshot(db, INT64_MIN, INT64_MAX, &bl, &nb);
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
    for (size_t i = 0; i < nb; i++) db_block_unref(db, bl[i]);
    free(bl);
    if (c.rc) {
        free(c.v);
        return c.rc;
    }
    if (c.n > 1) qsort(c.v, c.n, sizeof *c.v, cmp_cstr);
    size_t w = 0;
    for (size_t i = 0; i < c.n; i++)
        if (!w || strcmp(c.v[w - 1], c.v[i]) != 0) c.v[w++] = c.v[i];
    *values = c.v;
    *n = w;
    return 0;
}
