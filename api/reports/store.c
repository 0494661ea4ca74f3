/*
 * store.c: the report store's table and its persistence under
 * <data-dir>/reports/: open (load, clean up, requeue), close, retention.
 *
 * Persistence is one small JSON file per report (<id>.json) and one CSV
 * (<id>.csv), each written to <name>.tmp, fsynced, renamed over the old one
 * and the directory fsynced, so a crash leaves either the old or the new file.
 * docs/reports.md says why not SQLite.  Every metadata write happens under the
 * store mutex: the writes to one report's file are then ordered, and a worker
 * can never resurrect the file of a report deleted meanwhile.  Reports are few
 * and small, so the lock is held across an fsync without harm.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports_internal.h"
#include "strata_fs.h"
#include "strata_err.h"
#include "strata_log.h"
#include "strata_time.h"

#define STORE_FORMAT 1
#define DAY_MS       INT64_C(86400000)

/* ---- files --------------------------------------------------------------- */

/* Makes a rename or unlink in dir durable. */
char *reports_path(const api_reports_t *st, const char *id, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s%s", st->dir, id, suffix);
    return buf;
}

/* temp + fsync + rename + directory fsync. */
static int write_atomic(const api_reports_t *st, const char *path, const char *data, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        strata_error("report metadata write failed", "path=%s err=\"%s\"", tmp, strerror(e));
        return strata_errno_to_err(e);
    }
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t k = write(fd, data + off, len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            rc = errno;
            break;
        }
        off += (size_t)k;
    }
    if (!rc && fsync(fd)) rc = errno;
    if (close(fd) && !rc) rc = errno;
    if (!rc && rename(tmp, path)) rc = errno;
    if (rc) {
        strata_error("report metadata write failed", "path=%s err=\"%s\"", path, strerror(rc));
        unlink(tmp);
        return strata_errno_to_err(rc);
    }
    return strata_fsync_dir(st->dir);
}

/* Must hold st->mu (or be single-threaded at open). */
int reports_persist(const api_reports_t *st, const report_t *r)
{
    json_t *rep = report_json(r, -1);
    json_t *o = json_object();
    if (!rep || !o) {
        json_decref(rep);
        json_decref(o);
        return STRATA_ENOMEM;
    }
    json_object_set_new(o, "format", json_integer(STORE_FORMAT));
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    if (r->attempts) json_object_set_new(o, "attempts", json_integer(r->attempts));
    if (r->status == ST_READY && r->file_sha256[0])
        json_object_set_new(
            o, "file", json_pack("{s:I,s:s}", "size", (json_int_t)r->file_size, "sha256", r->file_sha256));
    json_object_set_new(o, "report", rep);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) return STRATA_ENOMEM;
    char path[4096];
    int rc = write_atomic(st, reports_path(st, r->id, ".json", path, sizeof path), s, strlen(s));
    free(s);
    return rc;
}

/* Removes the report's files: metadata first, so a crash in between leaves
 * an orphan CSV that open deletes, never a report without its file. */
static int remove_files(const api_reports_t *st, const report_t *r)
{
    char path[4096];
    if (unlink(reports_path(st, r->id, ".json", path, sizeof path)) && errno != ENOENT) {
        int e = errno;
        strata_error("report delete failed", "path=%s err=\"%s\"", path, strerror(e));
        return strata_errno_to_err(e);
    }
    int rc = strata_fsync_dir(st->dir);
    if (unlink(reports_path(st, r->id, ".csv", path, sizeof path)) && errno != ENOENT)
        strata_warn("report file delete failed", "path=%s err=\"%s\"", path, strerror(errno));
    return rc;
}

/* ---- the in-memory table -------------------------------------------------- */

int reports_table_add(api_reports_t *st, report_t *r)
{
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        report_t **nr = realloc(st->r, nc * sizeof *nr);
        if (!nr) return STRATA_ENOMEM;
        st->r = nr;
        st->cap = nc;
    }
    st->r[st->n++] = r;
    return 0;
}

static void table_remove(api_reports_t *st, size_t i)
{
    memmove(st->r + i, st->r + i + 1, (st->n - i - 1) * sizeof *st->r);
    st->n--;
}

ssize_t reports_table_find(const api_reports_t *st, int32_t tenant_id, const char *id)
{
    if (!reports_valid_uuid(id)) return -1;
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->tenant_id == tenant_id && strcasecmp(st->r[i]->id, id) == 0) return (ssize_t)i;
    return -1;
}

/* Removes row i from the store and disk; a busy report is cancelled and
 * handed to its worker to free.  Holds st->mu. */
int reports_remove_locked(api_reports_t *st, size_t i)
{
    report_t *r = st->r[i];
    int rc = remove_files(st, r);
    if (rc) return rc;
    table_remove(st, i);
    if (r->busy) {
        r->deleted = 1;
        r->cancelled = 1;
    } else {
        report_free(r);
    }
    return 0;
}

int reports_sweep_locked(api_reports_t *st)
{
    if (st->opt.retention_ms <= 0) return 0;
    int64_t cutoff = reports_now(st) - st->opt.retention_ms;
    int removed = 0;
    for (size_t i = 0; i < st->n;) {
        if (st->r[i]->created_at < cutoff) {
            char id[37];
            memcpy(id, st->r[i]->id, sizeof id);
            if (reports_remove_locked(st, i) == 0) {
                strata_info("report expired", "id=%s", id);
                removed++;
                continue;
            }
        }
        i++;
    }
    return removed;
}

/* ---- open / close ---------------------------------------------------------- */

void api_reports_options_init(api_reports_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->retention_ms = 30 * DAY_MS;
    o->sweep_interval_ms = 60000;
}

static int load_one(api_reports_t *st, const char *file, report_t **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", st->dir, file);
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    json_t *rep = o ? json_object_get(o, "report") : NULL;
    report_t *r = calloc(1, sizeof *r);
    int ok = r && rep && json_integer_value(json_object_get(o, "format")) == STORE_FORMAT;
    const char *id = ok ? json_string_value(json_object_get(rep, "id")) : NULL;
    const char *name = ok ? json_string_value(json_object_get(rep, "name")) : NULL;
    const char *by = ok ? json_string_value(json_object_get(rep, "createdBy")) : NULL;
    const char *status = ok ? json_string_value(json_object_get(rep, "status")) : NULL;
    const char *msg = ok ? json_string_value(json_object_get(rep, "statusMessage")) : NULL;
    const char *ts[4] = { NULL, NULL, NULL, NULL };
    static const char *const tkeys[4] = { "createdAt", "start", "end", "statusUpdatedAt" };
    int64_t *tv[4];
    if (r) {
        tv[0] = &r->created_at;
        tv[1] = &r->start;
        tv[2] = &r->end;
        tv[3] = &r->status_updated_at;
    }
    for (int i = 0; ok && i < 4; i++) {
        ts[i] = json_string_value(json_object_get(rep, tkeys[i]));
        ok = ts[i] && strata_time_parse_rfc3339(ts[i], tv[i]) == 0;
    }
    ok = ok && reports_valid_uuid(id) && name && by && status &&
         json_is_integer(json_object_get(rep, "tenantId"));
    if (ok) {
        memcpy(r->id, id, 37);
        r->tenant_id = (int32_t)json_integer_value(json_object_get(rep, "tenantId"));
        r->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        json_int_t att = json_integer_value(json_object_get(o, "attempts")); /* 0 when absent */
        r->attempts = att > 0 && att < 1000 ? (int)att : 0;
        /* the CSV's integrity record; absent in reports made before it */
        json_t *fl = json_object_get(o, "file");
        const char *sha = json_string_value(json_object_get(fl, "sha256"));
        json_t *sz = json_object_get(fl, "size");
        if (sha && strlen(sha) == 64 && strspn(sha, "0123456789abcdef") == 64 && json_is_integer(sz) &&
            json_integer_value(sz) >= 0) {
            memcpy(r->file_sha256, sha, 65);
            r->file_size = (int64_t)json_integer_value(sz);
        }
        int s = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(status, reports_status_names[i]) == 0) s = i;
        json_t *g = json_object_get(rep, "groupBy");
        r->group_by = API_REPORT_GROUP_NONE;
        ok = s >= 0 && (!g || json_is_null(g) ||
                        (json_is_string(g) && report_parse_group(json_string_value(g), &r->group_by) == 0));
        r->status = (enum report_status)(s < 0 ? 0 : s);
        json_t *fb = json_object_get(rep, "filterBy");
        size_t nf = json_array_size(fb);
        r->name = strdup(name);
        r->created_by = strdup(by);
        r->status_message = strdup(msg ? msg : "");
        r->filter_by = nf ? calloc(nf, sizeof *r->filter_by) : NULL;
        if (!r->name || !r->created_by || !r->status_message || (nf && !r->filter_by)) ok = 0;
        for (size_t i = 0; ok && i < nf; i++) {
            const char *t = json_string_value(json_array_get(fb, i));
            if (!t || !(r->filter_by[i] = strdup(t)))
                ok = 0;
            else
                r->nfilter = i + 1;
        }
    }
    json_decref(o);
    if (!ok) {
        report_free(r);
        if (!o)
            strata_warn("report metadata unreadable, skipped", "path=%s line=%d err=\"%s\"", path, e.line,
                        e.text);
        else
            strata_warn("report metadata invalid, skipped", "path=%s", path);
        return STRATA_ECORRUPT;
    }
    *out = r;
    return 0;
}

static int cmp_seq(const void *a, const void *b)
{
    const report_t *x = *(report_t *const *)a, *y = *(report_t *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int load_all(api_reports_t *st)
{
    DIR *d = opendir(st->dir);
    if (!d) {
        strata_error("cannot open the reports directory", "dir=%s err=\"%s\"", st->dir, strerror(errno));
        return strata_errno_to_err(errno);
    }
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        const char *f = de->d_name;
        if (has_suffix(f, ".tmp")) {
            /* an interrupted write: the file it was replacing is still whole */
            snprintf(path, sizeof path, "%s/%s", st->dir, f);
            unlink(path);
        } else if (strlen(f) == 41 && has_suffix(f, ".json")) {
            report_t *r;
            if (load_one(st, f, &r)) continue;
            if (reports_table_add(st, r)) {
                report_free(r);
                closedir(d);
                return STRATA_ENOMEM;
            }
        }
    }
    if (st->n) qsort(st->r, st->n, sizeof *st->r, cmp_seq);
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->seq >= st->next_seq) st->next_seq = st->r[i]->seq + 1;

    /* Second pass: CSVs without a Ready report are orphans (deleted, or left
     * by a crash between rename and the Ready metadata write). */
    rewinddir(d);
    while ((de = readdir(d))) {
        const char *f = de->d_name;
        if (!(strlen(f) == 40 && has_suffix(f, ".csv"))) continue;
        char id[37];
        memcpy(id, f, 36);
        id[36] = 0;
        int keep = 0;
        for (size_t i = 0; i < st->n; i++)
            if (strcmp(st->r[i]->id, id) == 0 && st->r[i]->status == ST_READY) keep = 1;
        if (!keep) {
            snprintf(path, sizeof path, "%s/%s", st->dir, f);
            unlink(path);
        }
    }
    closedir(d);

    int64_t now = reports_now(st);
    for (size_t i = 0; i < st->n; i++) {
        report_t *r = st->r[i];
        struct stat sb;
        if (r->status == ST_PROCESSING && r->attempts >= API_REPORTS_MAX_ATTEMPTS) {
            /* every try ended in a crash: it would take the daemon down again */
            char msg[256];
            snprintf(msg, sizeof msg,
                     "Generation was interrupted %d times (the daemon stopped during it); not tried again",
                     r->attempts);
            report_set_status(r, ST_FAILED, now, msg);
            reports_persist(st, r);
            strata_warn("report failed after repeated interrupted generations", "id=%s attempts=%d", r->id,
                        r->attempts);
            continue;
        }
        if (r->status == ST_PROCESSING) {
            report_set_status(r, ST_PENDING, now, "Generation was interrupted; it will run again");
            reports_persist(st, r);
            strata_info("report requeued after an interrupted generation", "id=%s", r->id);
        } else if (r->status == ST_READY &&
                   stat(reports_path(st, r->id, ".csv", path, sizeof path), &sb) != 0) {
            report_set_status(r, ST_PENDING, now, "Report file was missing; it will be generated again");
            reports_persist(st, r);
            strata_warn("report file missing, requeued", "id=%s", r->id);
        } else if (r->status == ST_READY && r->file_sha256[0] && (int64_t)sb.st_size != r->file_size) {
            /* the cheap half of the integrity check (the hash is checked when served) */
            char why[256];
            snprintf(why, sizeof why, "%s%lld bytes on disk, %lld written (truncated or appended to)",
                     REPORTS_DAMAGED_PREFIX, (long long)sb.st_size, (long long)r->file_size);
            report_set_status(r, ST_FAILED, now, why);
            reports_persist(st, r);
            char q[400];
            strata_error("report file damaged, failed", "id=%s err=%s", r->id,
                         strata_log_quote(q, sizeof q, why));
        }
        /* A report to be generated whose range no longer fits the data that
         * can exist (made by an older version, or the retention shrank) is
         * Failed now rather than generated, or retried after every crash. */
        char why[256], msg[300];
        if (r->status == ST_PENDING &&
            report_check_range(now, st->opt.data_retention_ms, r->start, r->end, why, sizeof why)) {
            snprintf(msg, sizeof msg, "Cannot be generated: %s", why);
            report_set_status(r, ST_FAILED, now, msg);
            reports_persist(st, r);
            char q[400];
            strata_warn("report range invalid, failed", "id=%s err=%s", r->id,
                        strata_log_quote(q, sizeof q, why));
        }
    }
    return 0;
}

int api_reports_open(const char *data_dir, const api_reports_options_t *opt, api_reports_t **out)
{
    if (!data_dir || !opt || !out) return STRATA_EINVAL;
    api_reports_t *st = calloc(1, sizeof *st);
    if (!st) return STRATA_ENOMEM;
    st->opt = *opt;
    if (st->opt.sweep_interval_ms <= 0) st->opt.sweep_interval_ms = 60000;
    if (st->opt.workers < 0) st->opt.workers = 0;
    size_t len = strlen(data_dir) + sizeof "/reports";
    st->dir = malloc(len);
    if (!st->dir) {
        free(st);
        return STRATA_ENOMEM;
    }
    snprintf(st->dir, len, "%s/reports", data_dir);
    (void)mkdir(data_dir, 0755); /* usually exists; the next mkdir reports real failures */
    if (mkdir(st->dir, 0755) == 0) {
        strata_fsync_dir(data_dir);
    } else if (errno != EEXIST) {
        int e = errno;
        strata_error("cannot create the reports directory", "dir=%s err=\"%s\"", st->dir, strerror(e));
        free(st->dir);
        free(st);
        return strata_errno_to_err(e);
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->work, &ca);
    pthread_cond_init(&st->idle, &ca);
    pthread_condattr_destroy(&ca);
    st->next_seq = 1;
    int rc = load_all(st);
    if (rc) {
        api_reports_close(st);
        return rc;
    }
    int removed = reports_sweep_locked(st);
    strata_info("reports loaded", "dir=%s reports=%zu expired=%d", st->dir, st->n, removed);
    if ((rc = reports_workers_start(st))) {
        api_reports_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void api_reports_close(api_reports_t *st)
{
    if (!st) return;
    reports_workers_stop(st);
    for (size_t i = 0; i < st->n; i++) report_free(st->r[i]);
    free(st->r);
    pthread_cond_destroy(&st->work);
    pthread_cond_destroy(&st->idle);
    pthread_mutex_destroy(&st->mu);
    free(st->dir);
    free(st);
}

int api_reports_sweep(api_reports_t *st)
{
    pthread_mutex_lock(&st->mu);
    int n = reports_sweep_locked(st);
    pthread_mutex_unlock(&st->mu);
    return n;
}
