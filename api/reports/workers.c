/*
 * workers.c: generation.  Workers take Pending reports in creation order and
 * drive Pending -> Processing -> Ready | Failed, calling the generate callback
 * without the store lock; a delete or close sets the report's cancel flag and
 * the worker discards its temp CSV (docs/reports.md, "Lifecycle").  Workers
 * also apply retention every sweep_interval_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reports_internal.h"
#include "strata_fs.h"
#include "strata_err.h"
#include "strata_log.h"

static report_t *pick_pending(api_reports_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->status == ST_PENDING && !st->r[i]->busy) return st->r[i];
    return NULL;
}

/* Generates r's CSV into <id>.csv.tmp and moves it into place.  Called with
 * st->mu held; releases it while the callback runs. */
static void process_locked(api_reports_t *st, report_t *r)
{
    r->busy = 1;
    r->cancelled = 0;
    st->nbusy++;
    r->attempts++; /* persisted with Processing: a crash during it leaves it counted */
    report_set_status(r, ST_PROCESSING, reports_now(st), "Generating the report");
    reports_persist(st, r);

    /* The callback gets copies of what it reads, so nothing it holds can
     * change under it while the lock is released. */
    api_report_request_t req = {
        .id = r->id,
        .name = r->name,
        .tenant_id = r->tenant_id,
        .start_ms = r->start,
        .end_ms = r->end,
        .group_by = r->group_by,
        .filter_by = (const char *const *)r->filter_by,
        .nfilter = r->nfilter,
    };
    char tmp[4096], final[4096];
    reports_path(st, r->id, ".csv.tmp", tmp, sizeof tmp);
    reports_path(st, r->id, ".csv", final, sizeof final);
    pthread_mutex_unlock(&st->mu);

    char errmsg[512] = "";
    int rc = 0;
    int64_t rows = 0;
    FILE *f = fopen(tmp, "we");
    api_report_csv_t *csv = NULL;
    if (!f) {
        rc = strata_errno_to_err(errno);
        snprintf(errmsg, sizeof errmsg, "cannot create the report file: %s", strerror(errno));
    } else if ((rc = api_reports_csv_new(f, r->group_by, &csv))) {
        snprintf(errmsg, sizeof errmsg, "cannot write the report file: %s", strata_strerror(rc));
    } else {
        rc = st->opt.generate
                 ? st->opt.generate(st->opt.generate_ctx, &req, csv, &r->cancelled, errmsg, sizeof errmsg)
                 : STRATA_EUNSUPPORTED;
        rows = api_reports_csv_rows(csv);
    }
    api_reports_csv_free(csv);
    if (f) {
        int werr = 0;
        if (fflush(f) || ferror(f) || fsync(fileno(f))) werr = errno ? errno : EIO;
        if (fclose(f) && !werr) werr = errno;
        if (werr && rc == 0) {
            rc = strata_errno_to_err(werr);
            snprintf(errmsg, sizeof errmsg, "cannot write the report file: %s", strerror(werr));
        }
    }
    /* The integrity record, from the bytes as written (read back from the
     * page cache), before the file is moved into place. */
    char sha[65] = "";
    int64_t fsize = 0;
    if (rc == 0) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        int drc = fd < 0 ? strata_errno_to_err(errno) : reports_file_digest(fd, sha, &fsize);
        if (fd >= 0) close(fd);
        if (drc) {
            rc = drc;
            snprintf(errmsg, sizeof errmsg, "cannot read back the report file: %s", strata_strerror(drc));
        }
    }
    if (rc == 0 && rename(tmp, final)) {
        rc = strata_errno_to_err(errno);
        snprintf(errmsg, sizeof errmsg, "cannot store the report file: %s", strerror(errno));
    }
    if (rc == 0)
        strata_fsync_dir(st->dir);
    else
        unlink(tmp);

    pthread_mutex_lock(&st->mu);
    r->busy = 0;
    st->nbusy--;
    if (r->deleted) {
        /* Deleted meanwhile: its metadata is already gone; drop what we made. */
        unlink(tmp);
        unlink(final);
        report_free(r);
    } else if (rc == 0) {
        r->attempts = 0;
        memcpy(r->file_sha256, sha, sizeof r->file_sha256);
        r->file_size = fsize;
        r->file_ok = 0;
        char msg[128];
        snprintf(msg, sizeof msg, "Report is ready (%lld rows)", (long long)rows);
        report_set_status(r, ST_READY, reports_now(st), msg);
        reports_persist(st, r);
        strata_info("report ready", "id=%s rows=%lld", r->id, (long long)rows);
    } else if (r->cancelled) {
        r->attempts--; /* a clean shutdown is not a failed attempt */
        report_set_status(r, ST_PENDING, reports_now(st),
                          "Generation interrupted by a shutdown; it will run again");
        reports_persist(st, r);
    } else {
        r->attempts = 0;
        if (!errmsg[0]) snprintf(errmsg, sizeof errmsg, "%s", strata_strerror(rc));
        report_set_status(r, ST_FAILED, reports_now(st), errmsg);
        reports_persist(st, r);
        char q[600];
        strata_warn("report failed", "id=%s err=%s", r->id, strata_log_quote(q, sizeof q, errmsg));
    }
    pthread_cond_broadcast(&st->idle);
}

static void *worker_main(void *arg)
{
    api_reports_t *st = arg;
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    pthread_mutex_lock(&st->mu);
    while (!st->stopping) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t since = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
        if (since >= st->opt.sweep_interval_ms) {
            reports_sweep_locked(st);
            last = now;
            since = 0;
        }
        report_t *r = pick_pending(st);
        if (r) {
            process_locked(st, r);
            continue;
        }
        int64_t wait = st->opt.sweep_interval_ms - since;
        struct timespec dl = now;
        dl.tv_sec += wait / 1000;
        dl.tv_nsec += (wait % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&st->work, &st->mu, &dl);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Starts opt.workers threads (none for 0).  On failure the ones started run
 * until reports_workers_stop. */
int reports_workers_start(api_reports_t *st)
{
    if (st->opt.workers <= 0) return 0;
    st->threads = calloc((size_t)st->opt.workers, sizeof *st->threads);
    if (!st->threads) return STRATA_ENOMEM;
    for (int i = 0; i < st->opt.workers; i++) {
        if (pthread_create(&st->threads[i], NULL, worker_main, st)) return STRATA_ENOMEM;
        st->nthreads++;
    }
    return 0;
}

/* Stops the workers: a generation in progress is cancelled (its worker
 * leaves the report Pending); returns when every thread has ended. */
void reports_workers_stop(api_reports_t *st)
{
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->busy) st->r[i]->cancelled = 1;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->mu);
    for (int i = 0; i < st->nthreads; i++) pthread_join(st->threads[i], NULL);
    free(st->threads);
    st->threads = NULL;
    st->nthreads = 0;
}

int api_reports_run_one(api_reports_t *st)
{
    pthread_mutex_lock(&st->mu);
    report_t *r = st->stopping ? NULL : pick_pending(st);
    if (r) process_locked(st, r);
    pthread_mutex_unlock(&st->mu);
    return r ? 1 : 0;
}

int api_reports_wait_idle(api_reports_t *st, int64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    while (st->nbusy > 0 || pick_pending(st)) {
        if (pthread_cond_timedwait(&st->idle, &st->mu, &dl) == ETIMEDOUT) {
            rc = STRATA_ETIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}
