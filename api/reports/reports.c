/*
 * reports.c: the report store (DESIGN.md section 6, "Reports"): POST body
 * validation, crash-safe persistence of metadata and CSV files under
 * <data-dir>/reports/, list/count/get/delete/download, retention, and the
 * background workers that drive Pending -> Processing -> Ready | Failed.
 *
 * Persistence is one small JSON file per report (<id>.json) and one CSV
 * (<id>.csv), each written to <name>.tmp, fsynced, renamed over the old one
 * and the directory fsynced, so a crash leaves either the old or the new file.
 * docs/reports.md says why not SQLite.  Every metadata write happens under the
 * store mutex: the writes to one report's file are then ordered, and a worker
 * can never resurrect the file of a report deleted meanwhile.  Reports are few
 * and small, so the lock is held across an fsync without harm.
 *
 * The CSV writer and the aggregation live in reports_csv.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reports.h"
#include "strata_err.h"
#include "strata_log.h"
#include "strata_time.h"

#define STORE_FORMAT 1
#define DAY_MS INT64_C(86400000)

enum status { ST_PENDING, ST_PROCESSING, ST_READY, ST_FAILED };
static const char *const STATUS_NAMES[] = {"Pending", "Processing", "Ready", "Failed"};
static const char *const GROUP_NAMES[] = {NULL, "Nodepool", "Project", "Department", "Cluster"};

typedef struct report {
    char id[37];
    char *name;
    char *created_by;
    int32_t tenant_id;
    int64_t created_at, start, end, status_updated_at;
    enum api_report_group group_by;
    char **filter_by;
    size_t nfilter;
    enum status status;
    char *status_message;
    uint64_t seq;            /* creation order, persisted: workers take the lowest */
    int busy;                /* a worker is generating it */
    volatile int cancelled;  /* read by the generate callback without the lock */
    int deleted;             /* removed from the store while busy; the worker frees it */
} report_t;

struct api_reports {
    char *dir;
    api_reports_options_t opt;
    pthread_mutex_t mu;
    pthread_cond_t work;     /* a report became Pending, or stopping */
    pthread_cond_t idle;     /* a generation ended */
    report_t **r;            /* creation order */
    size_t n, cap;
    uint64_t next_seq;
    int nbusy;
    int stopping;
    pthread_t *threads;
    int nthreads;
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t clock_now(const api_reports_t *st)
{
    if (st->opt.now_ms) return st->opt.now_ms(st->opt.now_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int errno_to_err(int e)
{
    if (e == ENOSPC || e == EDQUOT) return STRATA_ENOSPC;
    if (e == ENOMEM) return STRATA_ENOMEM;
    return STRATA_EIO;
}

static int set_error(api_reports_result_t *out, strata_arena_t *arena, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_error(api_reports_result_t *out, strata_arena_t *arena, int rc, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out->error = strata_arena_strdup(arena, buf);
    if (!out->error) out->error = strata_strerror(rc);
    return rc;
}

static int valid_uuid(const char *s)
{
    if (!s || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int new_uuid(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return STRATA_EIO;
        }
        got += (size_t)k;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = 0;
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_to_err(errno);
    int rc = fsync(fd) ? errno_to_err(errno) : 0;
    close(fd);
    return rc;
}

static char *path_of(const api_reports_t *st, const char *id, const char *suffix, char *buf,
                     size_t cap)
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
        return errno_to_err(e);
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
        return errno_to_err(rc);
    }
    return fsync_dir(st->dir);
}

static void report_free(report_t *r)
{
    if (!r) return;
    free(r->name);
    free(r->created_by);
    for (size_t i = 0; i < r->nfilter; i++) free(r->filter_by[i]);
    free(r->filter_by);
    free(r->status_message);
    free(r);
}

static int set_status(report_t *r, enum status s, int64_t now, const char *msg)
{
    char *m = strdup(msg ? msg : "");
    if (!m) return STRATA_ENOMEM;
    free(r->status_message);
    r->status_message = m;
    r->status = s;
    r->status_updated_at = now;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    if (strata_time_format_rfc3339(ms, buf, sizeof buf) < 0) return json_null();
    return json_string(buf);
}

/* The spec's Report: ReportRequestFields + ReportCalculatedFields. */
static json_t *report_json(const report_t *r)
{
    json_t *o = json_object();
    json_t *fb = json_array();
    if (!o || !fb) {
        json_decref(o);
        json_decref(fb);
        return NULL;
    }
    for (size_t i = 0; i < r->nfilter; i++) json_array_append_new(fb, json_string(r->filter_by[i]));
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "tenantId", json_integer(r->tenant_id));
    json_object_set_new(o, "createdBy", json_string(r->created_by));
    json_object_set_new(o, "createdAt", time_json(r->created_at));
    json_object_set_new(o, "start", time_json(r->start));
    json_object_set_new(o, "end", time_json(r->end));
    json_object_set_new(o, "groupBy", r->group_by ? json_string(GROUP_NAMES[r->group_by])
                                                  : json_null());
    json_object_set_new(o, "filterBy", fb);
    json_object_set_new(o, "status", json_string(STATUS_NAMES[r->status]));
    json_object_set_new(o, "statusUpdatedAt", time_json(r->status_updated_at));
    json_object_set_new(o, "statusMessage", json_string(r->status_message ? r->status_message : ""));
    return o;
}

/* Dumps j (stolen) into the arena. */
static int render(json_t *j, strata_arena_t *arena, api_reports_result_t *out)
{
    if (!j) return STRATA_ENOMEM;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return STRATA_ENOMEM;
    size_t len = strlen(s);
    out->json = strata_arena_strndup(arena, s, len);
    free(s);
    if (!out->json) return STRATA_ENOMEM;
    out->len = len;
    return 0;
}

/* Must hold st->mu (or be single-threaded at open). */
static int persist(const api_reports_t *st, const report_t *r)
{
    json_t *rep = report_json(r);
    json_t *o = json_object();
    if (!rep || !o) {
        json_decref(rep);
        json_decref(o);
        return STRATA_ENOMEM;
    }
    json_object_set_new(o, "format", json_integer(STORE_FORMAT));
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    json_object_set_new(o, "report", rep);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) return STRATA_ENOMEM;
    char path[4096];
    int rc = write_atomic(st, path_of(st, r->id, ".json", path, sizeof path), s, strlen(s));
    free(s);
    return rc;
}

/* Removes the report's files: metadata first, so a crash in between leaves
 * an orphan CSV that open deletes, never a report without its file. */
static int remove_files(const api_reports_t *st, const report_t *r)
{
    char path[4096];
    if (unlink(path_of(st, r->id, ".json", path, sizeof path)) && errno != ENOENT) {
        int e = errno;
        strata_error("report delete failed", "path=%s err=\"%s\"", path, strerror(e));
        return errno_to_err(e);
    }
    int rc = fsync_dir(st->dir);
    if (unlink(path_of(st, r->id, ".csv", path, sizeof path)) && errno != ENOENT)
        strata_warn("report file delete failed", "path=%s err=\"%s\"", path, strerror(errno));
    return rc;
}

/* ---- validation of the POST body ----------------------------------------- */

static int parse_group(const char *s, enum api_report_group *g)
{
    for (int i = 1; i <= API_REPORT_GROUP_CLUSTER; i++)
        if (strcmp(s, GROUP_NAMES[i]) == 0) {
            *g = (enum api_report_group)i;
            return 0;
        }
    return STRATA_EINVAL;
}

/* ^(projectName|departmentName|clusterId)(==).+$ with ECMAScript's '.', which
 * matches anything but line terminators (\n \r U+2028 U+2029). */
static int filter_term_ok(const char *s)
{
    static const char *const fields[] = {"projectName", "departmentName", "clusterId"};
    const char *v = NULL;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(fields[i]);
        if (strncmp(s, fields[i], n) == 0 && strncmp(s + n, "==", 2) == 0) v = s + n + 2;
    }
    if (!v || !*v) return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '\n' || *p == '\r') return 0;
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) return 0;
    }
    return 1;
}

static int time_field(json_t *body, const char *key, int64_t *ms, strata_arena_t *arena,
                      api_reports_result_t *out)
{
    json_t *v = json_object_get(body, key);
    if (!v) return set_error(out, arena, STRATA_EINVAL, "%s: required field is missing", key);
    if (!json_is_string(v) || strata_time_parse_rfc3339(json_string_value(v), ms))
        return set_error(out, arena, STRATA_EINVAL,
                         "%s: must be an RFC 3339 date-time string (e.g. 2024-12-01T00:00:00Z)",
                         key);
    /* An offset can push the instant out of 0000..9999 UTC, which the Report
     * cannot render or store back: refuse it here, not lose it later. */
    char utc[STRATA_TIME_RFC3339_BUFSZ];
    if (strata_time_format_rfc3339(*ms, utc, sizeof utc) < 0)
        return set_error(out, arena, STRATA_EINVAL, "%s: must lie between years 0000 and 9999 in UTC", key);
    return 0;
}

static int validate_body(json_t *body, report_t *r, strata_arena_t *arena,
                         api_reports_result_t *out)
{
    if (!json_is_object(body))
        return set_error(out, arena, STRATA_EINVAL, "request body must be a JSON object");
    json_t *name = json_object_get(body, "name");
    if (!name) return set_error(out, arena, STRATA_EINVAL, "name: required field is missing");
    if (!json_is_string(name)) return set_error(out, arena, STRATA_EINVAL, "name: must be a string");
    if (json_string_length(name) == 0)
        return set_error(out, arena, STRATA_EINVAL, "name: must not be empty");
    if (strlen(json_string_value(name)) != json_string_length(name))
        return set_error(out, arena, STRATA_EINVAL, "name: must not contain NUL characters");
    int rc;
    if ((rc = time_field(body, "start", &r->start, arena, out))) return rc;
    if ((rc = time_field(body, "end", &r->end, arena, out))) return rc;
    if (r->start >= r->end) return set_error(out, arena, STRATA_EINVAL, "end: must be after start");

    json_t *g = json_object_get(body, "groupBy");
    r->group_by = API_REPORT_GROUP_NONE;
    if (g && !json_is_null(g) &&
        (!json_is_string(g) || parse_group(json_string_value(g), &r->group_by)))
        return set_error(out, arena, STRATA_EINVAL,
                         "groupBy: must be one of Nodepool, Project, Department, Cluster, or null");

    json_t *fb = json_object_get(body, "filterBy");
    if (fb && !json_is_array(fb))
        return set_error(out, arena, STRATA_EINVAL, "filterBy: must be an array of strings");
    size_t nf = fb ? json_array_size(fb) : 0;
    for (size_t i = 0; i < nf; i++) {
        json_t *t = json_array_get(fb, i);
        if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t) ||
            !filter_term_ok(json_string_value(t)))
            return set_error(out, arena, STRATA_EINVAL,
                             "filterBy[%zu]: must match ^(projectName|departmentName|clusterId)(==).+$",
                             i);
    }
    r->name = strdup(json_string_value(name));
    r->filter_by = nf ? calloc(nf, sizeof *r->filter_by) : NULL;
    if (!r->name || (nf && !r->filter_by)) return STRATA_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        r->filter_by[i] = strdup(json_string_value(json_array_get(fb, i)));
        if (!r->filter_by[i]) return STRATA_ENOMEM;
        r->nfilter = i + 1;
    }
    return 0;
}

/* ---- the in-memory table -------------------------------------------------- */

static int table_add(api_reports_t *st, report_t *r)
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

static ssize_t table_find(const api_reports_t *st, int32_t tenant_id, const char *id)
{
    if (!valid_uuid(id)) return -1;
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->tenant_id == tenant_id && strcasecmp(st->r[i]->id, id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Removes row i from the store and disk; a busy report is cancelled and
 * handed to its worker to free.  Holds st->mu. */
static int remove_locked(api_reports_t *st, size_t i)
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

static int sweep_locked(api_reports_t *st)
{
    if (st->opt.retention_ms <= 0) return 0;
    int64_t cutoff = clock_now(st) - st->opt.retention_ms;
    int removed = 0;
    for (size_t i = 0; i < st->n;) {
        if (st->r[i]->created_at < cutoff) {
            char id[37];
            memcpy(id, st->r[i]->id, sizeof id);
            if (remove_locked(st, i) == 0) {
                strata_info("report expired", "id=%s", id);
                removed++;
                continue;
            }
        }
        i++;
    }
    return removed;
}

/* ---- generation ----------------------------------------------------------- */

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
    set_status(r, ST_PROCESSING, clock_now(st), "Generating the report");
    persist(st, r);

    /* The callback gets copies of what it reads, so nothing it holds can
     * change under it while the lock is released. */
    api_report_request_t req = {
        .id = r->id, .name = r->name, .tenant_id = r->tenant_id, .start_ms = r->start,
        .end_ms = r->end, .group_by = r->group_by,
        .filter_by = (const char *const *)r->filter_by, .nfilter = r->nfilter,
    };
    char tmp[4096], final[4096];
    path_of(st, r->id, ".csv.tmp", tmp, sizeof tmp);
    path_of(st, r->id, ".csv", final, sizeof final);
    pthread_mutex_unlock(&st->mu);

    char errmsg[512] = "";
    int rc = 0;
    int64_t rows = 0;
    FILE *f = fopen(tmp, "we");
    api_report_csv_t *csv = NULL;
    if (!f) {
        rc = errno_to_err(errno);
        snprintf(errmsg, sizeof errmsg, "cannot create the report file: %s", strerror(errno));
    } else if ((rc = api_reports_csv_new(f, r->group_by, &csv))) {
        snprintf(errmsg, sizeof errmsg, "cannot write the report file: %s", strata_strerror(rc));
    } else {
        rc = st->opt.generate ? st->opt.generate(st->opt.generate_ctx, &req, csv, &r->cancelled,
                                                 errmsg, sizeof errmsg)
                              : STRATA_EUNSUPPORTED;
        rows = api_reports_csv_rows(csv);
    }
    api_reports_csv_free(csv);
    if (f) {
        int werr = 0;
        if (fflush(f) || ferror(f) || fsync(fileno(f))) werr = errno ? errno : EIO;
        if (fclose(f) && !werr) werr = errno;
        if (werr && rc == 0) {
            rc = errno_to_err(werr);
            snprintf(errmsg, sizeof errmsg, "cannot write the report file: %s", strerror(werr));
        }
    }
    if (rc == 0 && rename(tmp, final)) {
        rc = errno_to_err(errno);
        snprintf(errmsg, sizeof errmsg, "cannot store the report file: %s", strerror(errno));
    }
    if (rc == 0) fsync_dir(st->dir);
    else unlink(tmp);

    pthread_mutex_lock(&st->mu);
    r->busy = 0;
    st->nbusy--;
    if (r->deleted) {
        /* Deleted meanwhile: its metadata is already gone; drop what we made. */
        unlink(tmp);
        unlink(final);
        report_free(r);
    } else if (rc == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "Report is ready (%lld rows)", (long long)rows);
        set_status(r, ST_READY, clock_now(st), msg);
        persist(st, r);
        strata_info("report ready", "id=%s rows=%lld", r->id, (long long)rows);
    } else if (r->cancelled) {
        set_status(r, ST_PENDING, clock_now(st),
                   "Generation interrupted by a shutdown; it will run again");
        persist(st, r);
    } else {
        if (!errmsg[0]) snprintf(errmsg, sizeof errmsg, "%s", strata_strerror(rc));
        set_status(r, ST_FAILED, clock_now(st), errmsg);
        persist(st, r);
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
            sweep_locked(st);
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
    const char *ts[4] = {NULL, NULL, NULL, NULL};
    static const char *const tkeys[4] = {"createdAt", "start", "end", "statusUpdatedAt"};
    int64_t *tv[4];
    if (r) {
        tv[0] = &r->created_at; tv[1] = &r->start; tv[2] = &r->end; tv[3] = &r->status_updated_at;
    }
    for (int i = 0; ok && i < 4; i++) {
        ts[i] = json_string_value(json_object_get(rep, tkeys[i]));
        ok = ts[i] && strata_time_parse_rfc3339(ts[i], tv[i]) == 0;
    }
    ok = ok && valid_uuid(id) && name && by && status && json_is_integer(json_object_get(rep, "tenantId"));
    if (ok) {
        memcpy(r->id, id, 37);
        r->tenant_id = (int32_t)json_integer_value(json_object_get(rep, "tenantId"));
        r->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        int s = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(status, STATUS_NAMES[i]) == 0) s = i;
        json_t *g = json_object_get(rep, "groupBy");
        r->group_by = API_REPORT_GROUP_NONE;
        ok = s >= 0 && (!g || json_is_null(g) ||
                        (json_is_string(g) && parse_group(json_string_value(g), &r->group_by) == 0));
        r->status = (enum status)(s < 0 ? 0 : s);
        json_t *fb = json_object_get(rep, "filterBy");
        size_t nf = json_array_size(fb);
        r->name = strdup(name);
        r->created_by = strdup(by);
        r->status_message = strdup(msg ? msg : "");
        r->filter_by = nf ? calloc(nf, sizeof *r->filter_by) : NULL;
        if (!r->name || !r->created_by || !r->status_message || (nf && !r->filter_by)) ok = 0;
        for (size_t i = 0; ok && i < nf; i++) {
            const char *t = json_string_value(json_array_get(fb, i));
            if (!t || !(r->filter_by[i] = strdup(t))) ok = 0;
            else r->nfilter = i + 1;
        }
    }
    json_decref(o);
    if (!ok) {
        report_free(r);
        if (!o) strata_warn("report metadata unreadable, skipped", "path=%s line=%d err=\"%s\"",
                            path, e.line, e.text);
        else strata_warn("report metadata invalid, skipped", "path=%s", path);
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
        strata_error("cannot open the reports directory", "dir=%s err=\"%s\"", st->dir,
                     strerror(errno));
        return errno_to_err(errno);
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
            if (table_add(st, r)) {
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

    int64_t now = clock_now(st);
    for (size_t i = 0; i < st->n; i++) {
        report_t *r = st->r[i];
        struct stat sb;
        if (r->status == ST_PROCESSING) {
            set_status(r, ST_PENDING, now, "Generation was interrupted; it will run again");
            persist(st, r);
            strata_info("report requeued after an interrupted generation", "id=%s", r->id);
        } else if (r->status == ST_READY &&
                   stat(path_of(st, r->id, ".csv", path, sizeof path), &sb) != 0) {
            set_status(r, ST_PENDING, now, "Report file was missing; it will be generated again");
            persist(st, r);
            strata_warn("report file missing, requeued", "id=%s", r->id);
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
    (void)mkdir(data_dir, 0755);  /* usually exists; the next mkdir reports real failures */
    if (mkdir(st->dir, 0755) == 0) {
        fsync_dir(data_dir);
    } else if (errno != EEXIST) {
        int e = errno;
        strata_error("cannot create the reports directory", "dir=%s err=\"%s\"", st->dir,
                     strerror(e));
        free(st->dir);
        free(st);
        return errno_to_err(e);
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
    int removed = sweep_locked(st);
    strata_info("reports loaded", "dir=%s reports=%zu expired=%d", st->dir, st->n, removed);
    if (st->opt.workers > 0) {
        st->threads = calloc((size_t)st->opt.workers, sizeof *st->threads);
        if (!st->threads) {
            api_reports_close(st);
            return STRATA_ENOMEM;
        }
        for (int i = 0; i < st->opt.workers; i++) {
            if (pthread_create(&st->threads[i], NULL, worker_main, st)) {
                api_reports_close(st);
                return STRATA_ENOMEM;
            }
            st->nthreads++;
        }
    }
    *out = st;
    return 0;
}

void api_reports_close(api_reports_t *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->busy) st->r[i]->cancelled = 1;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->mu);
    for (int i = 0; i < st->nthreads; i++) pthread_join(st->threads[i], NULL);
    free(st->threads);
    for (size_t i = 0; i < st->n; i++) report_free(st->r[i]);
    free(st->r);
    pthread_cond_destroy(&st->work);
    pthread_cond_destroy(&st->idle);
    pthread_mutex_destroy(&st->mu);
    free(st->dir);
    free(st);
}

/* ---- the HTTP-facing calls ---------------------------------------------------- */

int api_reports_create(api_reports_t *st, int32_t tenant_id, const char *created_by,
                       const char *body, size_t len, strata_arena_t *arena,
                       api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (!st || !body || !arena) return STRATA_EINVAL;
    json_error_t e;
    json_t *j = json_loadb(body, len, 0, &e);
    if (!j)
        return set_error(out, arena, STRATA_EINVAL, "malformed JSON at line %d, column %d: %s",
                         e.line, e.column, e.text);
    report_t *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(j);
        return STRATA_ENOMEM;
    }
    int rc = validate_body(j, r, arena, out);
    json_decref(j);
    if (rc) {
        report_free(r);
        return rc;
    }
    r->tenant_id = tenant_id;
    r->created_by = strdup(created_by ? created_by : "");
    if (!r->created_by || (rc = new_uuid(r->id))) {
        report_free(r);
        return rc ? rc : STRATA_ENOMEM;
    }

    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++)
        if (st->r[i]->tenant_id == tenant_id && strcmp(st->r[i]->name, r->name) == 0) {
            pthread_mutex_unlock(&st->mu);
            rc = set_error(out, arena, STRATA_ECONFLICT, "a report named \"%s\" already exists",
                           r->name);
            report_free(r);
            return rc;
        }
    r->created_at = clock_now(st);
    r->seq = st->next_seq++;
    if ((rc = set_status(r, ST_PENDING, r->created_at, "Waiting for a worker")) ||
        (rc = persist(st, r)) || (rc = table_add(st, r))) {
        pthread_mutex_unlock(&st->mu);
        report_free(r);
        return rc;
    }
    rc = render(report_json(r), arena, out);
    pthread_cond_signal(&st->work);
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) strata_info("report created", "id=%s tenant=%d", r->id, (int)tenant_id);
    return rc;
}

int api_reports_get(api_reports_t *st, int32_t tenant_id, const char *id, strata_arena_t *arena,
                    api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    ssize_t i = table_find(st, tenant_id, id);
    int rc = i < 0 ? STRATA_ENOTFOUND : render(report_json(st->r[i]), arena, out);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int api_reports_delete(api_reports_t *st, int32_t tenant_id, const char *id)
{
    pthread_mutex_lock(&st->mu);
    ssize_t i = table_find(st, tenant_id, id);
    int rc = i < 0 ? STRATA_ENOTFOUND : remove_locked(st, (size_t)i);
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) strata_info("report deleted", "id=%s tenant=%d", id, (int)tenant_id);
    return rc;
}

/* ASCII fallback name (quotes, backslashes, controls and non-ASCII replaced
 * by '_') and the RFC 5987 percent-encoded original. */
static char *content_disposition(strata_arena_t *arena, const char *filename)
{
    size_t n = strlen(filename);
    char *buf = strata_arena_alloc(arena, 64 + 4 * n);
    if (!buf) return NULL;
    char *p = buf;
    p += sprintf(p, "attachment; filename=\"");
    for (const unsigned char *s = (const unsigned char *)filename; *s; s++)
        *p++ = (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\' || *s == '/') ? '_' : (char)*s;
    p += sprintf(p, "\"; filename*=UTF-8''");
    for (const unsigned char *s = (const unsigned char *)filename; *s; s++) {
        if (isalnum(*s) || strchr("!#$&+-.^_`|~", *s)) *p++ = (char)*s;
        else p += sprintf(p, "%%%02X", *s);
    }
    *p = 0;
    return buf;
}

int api_reports_open_file(api_reports_t *st, int32_t tenant_id, const char *id,
                          strata_arena_t *arena, api_reports_file_t *file,
                          api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    file->fd = -1;
    pthread_mutex_lock(&st->mu);
    ssize_t i = table_find(st, tenant_id, id);
    int rc = 0;
    if (i < 0) {
        rc = STRATA_ENOTFOUND;
    } else {
        report_t *r = st->r[i];
        if (r->status == ST_FAILED) {
            rc = set_error(out, arena, STRATA_ECONFLICT, "report generation failed: %s",
                           r->status_message);
        } else if (r->status != ST_READY) {
            rc = set_error(out, arena, STRATA_ECONFLICT, "report is not ready (status %s)",
                           STATUS_NAMES[r->status]);
        } else {
            char path[4096];
            int fd = open(path_of(st, r->id, ".csv", path, sizeof path), O_RDONLY | O_CLOEXEC);
            struct stat sb;
            if (fd < 0 || fstat(fd, &sb)) {
                rc = errno_to_err(errno);
                strata_error("report file open failed", "path=%s err=\"%s\"", path,
                             strerror(errno));
                if (fd >= 0) close(fd);
            } else {
                size_t nl = strlen(r->name);
                char *fn = strata_arena_alloc(arena, nl + 5);
                if (fn) {
                    memcpy(fn, r->name, nl);
                    memcpy(fn + nl, ".csv", 5);
                }
                char *cd = fn ? content_disposition(arena, fn) : NULL;
                if (!cd) {
                    close(fd);
                    rc = STRATA_ENOMEM;
                } else {
                    file->fd = fd;
                    file->size = (int64_t)sb.st_size;
                    file->filename = fn;
                    file->content_disposition = cd;
                }
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int api_reports_sweep(api_reports_t *st)
{
    pthread_mutex_lock(&st->mu);
    int n = sweep_locked(st);
    pthread_mutex_unlock(&st->mu);
    return n;
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

/* ---- list and count --------------------------------------------------------- */

enum field { F_NAME, F_STATUS, F_CREATED_AT, F_CREATED_BY, F_COUNT };
static const char *const FIELDS[F_COUNT] = {"name", "status", "createdAt", "createdBy"};
enum op { OP_EQ, OP_NE, OP_LE, OP_GE, OP_CONTAINS, OP_NCONTAINS, OP_PREFIX, OP_SUFFIX, OP_COUNT };
static const char *const OPS[OP_COUNT] = {"==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"};

typedef struct term {
    int field, op;
    const char *val;
    int64_t t;
} term_t;

typedef struct query {
    term_t terms[API_REPORTS_MAX_FILTERS];
    size_t nterms;
    int sort_field, desc;
    int64_t offset, limit;
    const char *search;
} query_t;

void api_reports_query_init(api_reports_query_t *q)
{
    memset(q, 0, sizeof *q);
}

static int parse_query(const api_reports_query_t *q, query_t *pq, strata_arena_t *arena,
                       api_reports_result_t *out)
{
    memset(pq, 0, sizeof *pq);
    pq->sort_field = F_CREATED_AT;
    pq->limit = API_REPORTS_DEFAULT_LIMIT;
    if (!q) return 0;
    if (q->nfilter > API_REPORTS_MAX_FILTERS)
        return set_error(out, arena, STRATA_EINVAL, "filterBy: at most %d terms",
                         API_REPORTS_MAX_FILTERS);
    for (size_t k = 0; k < q->nfilter; k++) {
        const char *s = q->filter_by[k];
        term_t *t = &pq->terms[pq->nterms++];
        size_t i = 0;
        while (isalpha((unsigned char)s[i])) i++;
        t->field = -1;
        for (int f = 0; f < F_COUNT; f++)
            if (strlen(FIELDS[f]) == i && strncmp(s, FIELDS[f], i) == 0) t->field = f;
        if (t->field < 0)
            return set_error(out, arena, STRATA_EINVAL,
                             "filterBy: invalid term \"%s\": unknown field \"%.*s\" (name, status, "
                             "createdAt, createdBy)", s, (int)i, s);
        t->op = -1;
        for (int o = 0; o < OP_COUNT; o++)
            if (strncmp(s + i, OPS[o], 2) == 0) t->op = o;
        if (t->op < 0)
            return set_error(out, arena, STRATA_EINVAL,
                             "filterBy: invalid term \"%s\": expected one of == != <= >= =@ !@ =^ =$ "
                             "after \"%.*s\"", s, (int)i, s);
        t->val = s + i + 2;
        if (!*t->val)
            return set_error(out, arena, STRATA_EINVAL, "filterBy: invalid term \"%s\": empty value", s);
        if (t->field == F_CREATED_AT && t->op <= OP_GE && strata_time_parse_rfc3339(t->val, &t->t))
            return set_error(out, arena, STRATA_EINVAL,
                             "filterBy: invalid term \"%s\": \"%s\" is not an RFC 3339 date-time",
                             s, t->val);
    }
    if (q->sort_by) {
        pq->sort_field = -1;
        for (int f = 0; f < F_COUNT; f++)
            if (strcmp(q->sort_by, FIELDS[f]) == 0) pq->sort_field = f;
        if (pq->sort_field < 0)
            return set_error(out, arena, STRATA_EINVAL,
                             "sortBy: must be one of name, status, createdAt, createdBy");
    }
    if (q->sort_order) {
        if (strcmp(q->sort_order, "desc") == 0) pq->desc = 1;
        else if (strcmp(q->sort_order, "asc") != 0)
            return set_error(out, arena, STRATA_EINVAL, "sortOrder: must be asc or desc");
    }
    if (q->offset < 0) return set_error(out, arena, STRATA_EINVAL, "offset: must be >= 0");
    if (q->limit) {
        if (q->limit < 1 || q->limit > API_REPORTS_MAX_LIMIT)
            return set_error(out, arena, STRATA_EINVAL, "limit: must be between 1 and %d",
                             API_REPORTS_MAX_LIMIT);
        pq->limit = q->limit;
    }
    pq->offset = q->offset;
    pq->search = q->search && *q->search ? q->search : NULL;
    return 0;
}

static const char *field_text(const report_t *r, int f, char *buf, size_t cap)
{
    switch (f) {
    case F_NAME: return r->name;
    case F_STATUS: return STATUS_NAMES[r->status];
    case F_CREATED_BY: return r->created_by;
    default:
        if (strata_time_format_rfc3339(r->created_at, buf, cap) < 0) buf[0] = 0;
        return buf;
    }
}

static int match_cmp(int op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LE: return c <= 0;
    case OP_GE: return c >= 0;
    }
    return 0;
}

static int term_match(const term_t *t, const report_t *r)
{
    if (t->field == F_CREATED_AT && t->op <= OP_GE)
        return match_cmp(t->op, (r->created_at > t->t) - (r->created_at < t->t));
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    const char *s = field_text(r, t->field, buf, sizeof buf);
    size_t n = strlen(s), m = strlen(t->val);
    switch (t->op) {
    case OP_CONTAINS: return strstr(s, t->val) != NULL;
    case OP_NCONTAINS: return strstr(s, t->val) == NULL;
    case OP_PREFIX: return n >= m && memcmp(s, t->val, m) == 0;
    case OP_SUFFIX: return n >= m && memcmp(s + n - m, t->val, m) == 0;
    default: return match_cmp(t->op, strcmp(s, t->val));
    }
}

static int search_match(const char *hay, const char *needle)
{
    size_t m = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, m) == 0) return 1;
    return m == 0;
}

static int matches(const query_t *q, int32_t tenant_id, const report_t *r)
{
    if (r->tenant_id != tenant_id) return 0;
    for (size_t i = 0; i < q->nterms; i++)
        if (!term_match(&q->terms[i], r)) return 0;
    return !q->search || search_match(r->name, q->search);
}

/* qsort_r comparator; pq is the parsed query. */
static int cmp_reports(const void *a, const void *b, void *pq)
{
    const query_t *sort_q = pq;
    const report_t *x = *(report_t *const *)a, *y = *(report_t *const *)b;
    int c;
    if (sort_q->sort_field == F_CREATED_AT) {
        c = (x->created_at > y->created_at) - (x->created_at < y->created_at);
    } else {
        char b1[8], b2[8];
        c = strcmp(field_text(x, sort_q->sort_field, b1, sizeof b1),
                   field_text(y, sort_q->sort_field, b2, sizeof b2));
    }
    if (c == 0) c = (x->seq > y->seq) - (x->seq < y->seq);
    return sort_q->desc ? -c : c;
}

int api_reports_list(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                     strata_arena_t *arena, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    query_t pq;
    int rc = parse_query(q, &pq, arena, out);
    if (rc) return rc;
    pthread_mutex_lock(&st->mu);
    report_t **m = st->n ? malloc(st->n * sizeof *m) : NULL;
    if (st->n && !m) {
        pthread_mutex_unlock(&st->mu);
        return STRATA_ENOMEM;
    }
    size_t nm = 0;
    for (size_t i = 0; i < st->n; i++)
        if (matches(&pq, tenant_id, st->r[i])) m[nm++] = st->r[i];
    if (nm) qsort_r(m, nm, sizeof *m, cmp_reports, &pq);
    json_t *o = json_object(), *arr = json_array();
    rc = o && arr ? 0 : STRATA_ENOMEM;
    int64_t end = pq.offset > INT64_MAX - pq.limit ? INT64_MAX : pq.offset + pq.limit;
    for (int64_t i = pq.offset; rc == 0 && i < (int64_t)nm && i < end; i++) {
        json_t *rj = report_json(m[i]);
        if (!rj || json_array_append_new(arr, rj)) rc = STRATA_ENOMEM;
    }
    pthread_mutex_unlock(&st->mu);
    free(m);
    if (rc) {
        json_decref(o);
        json_decref(arr);
        return rc;
    }
    json_object_set_new(o, "reports", arr);
    if (end < (int64_t)nm) json_object_set_new(o, "next", json_integer(end));
    out->total = (int64_t)nm;
    return render(o, arena, out);
}

int api_reports_count(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                      strata_arena_t *arena, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    query_t pq;
    int rc = parse_query(q, &pq, arena, out);
    if (rc) return rc;
    int64_t n = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) n += matches(&pq, tenant_id, st->r[i]);
    pthread_mutex_unlock(&st->mu);
    out->total = n;
    json_t *o = json_object();
    if (o) json_object_set_new(o, "count", json_integer(n));
    return render(o, arena, out);
}
