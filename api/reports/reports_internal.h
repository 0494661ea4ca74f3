/*
 * reports_internal.h: what the files of the report store share, and nothing
 * outside api/reports includes: the report record, the store's struct, and
 * the helpers each file provides.  reports.h is the public contract.
 *
 *   reports.c      the HTTP-facing calls: create, get, delete, download
 *   store.c        the in-memory table, persistence, open/close, retention
 *   workers.c      generation: the worker threads, cancellation, run_one
 *   validate.c     the POST body
 *   report_json.c  a report's JSON, the status and groupBy names
 *   list.c         list and count: filters, search, sort, paging
 *   helpers.c      the clock, error mapping, ids, a record's status
 *   file_check.c   the CSV's size and SHA-256: taken when made, checked when served
 *
 * reports_csv.c (CSV writer, aggregation) and reports_gen.c (the generator
 * over the metric store) use reports.h only.
 *
 * Locking: st->mu guards the table, every field of every report except
 * `cancelled`, and every metadata write (docs/reports.md, "On disk").
 * Functions named *_locked expect it held.
 */
#ifndef API_REPORTS_INTERNAL_H
#define API_REPORTS_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "reports.h"

enum report_status { ST_PENDING, ST_PROCESSING, ST_READY, ST_FAILED };

typedef struct report {
    char id[37];
    char *name;
    char *created_by;
    int32_t tenant_id;
    int64_t created_at, start, end, status_updated_at;
    enum api_report_group group_by;
    char **filter_by;
    size_t nfilter;
    enum report_status status;
    char *status_message;
    uint64_t seq;           /* creation order, persisted: workers take the lowest */
    int attempts;           /* generations started and not ended (persisted): a crash leaves
                               it counted, so a report that kills the daemon is not retried
                               forever (API_REPORTS_MAX_ATTEMPTS) */
    int busy;               /* a worker is generating it */
    volatile int cancelled; /* read by the generate callback without the lock */
    int deleted;            /* removed from the store while busy; the worker frees it */
    /* The CSV's integrity record (persisted while Ready): its SHA-256 in hex
     * and size when it was made; "" for a report made before checksums. */
    char file_sha256[65];
    int64_t file_size;
    /* Verification cache (memory only): the file's identity when it last
     * matched the record, so a download of an unchanged file hashes nothing. */
    int file_ok;
    dev_t file_dev;
    ino_t file_ino;
    int64_t file_ok_size, file_mtime_s, file_mtime_ns, file_ctime_s, file_ctime_ns;
} report_t;

struct api_reports {
    char *dir;
    api_reports_options_t opt;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a report became Pending, or stopping */
    pthread_cond_t idle; /* a generation ended */
    report_t **r;        /* creation order */
    size_t n, cap;
    uint64_t next_seq;
    int nbusy;
    int stopping;
    pthread_t *threads;
    int nthreads;
};

/* The retention expiresAt is computed with: 0 when reports are kept forever. */
static inline int64_t reports_retention(const api_reports_t *st)
{
    return st->opt.retention_ms > 0 ? st->opt.retention_ms : 0;
}

/* ---- helpers.c ------------------------------------------------------------ */

/* The store's clock (opt.now_ms, else CLOCK_REALTIME), ms since the epoch. */
int64_t reports_now(const api_reports_t *st);
/* errno -> STRATA_ENOSPC, STRATA_ENOMEM or STRATA_EIO. */
/* Sets out->error to the formatted message (in the arena) and returns rc. */
int reports_error(api_reports_result_t *out, strata_arena_t *arena, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 1 for a 36-character 8-4-4-4-12 hex uuid. */
int reports_valid_uuid(const char *s);
void report_free(report_t *r);
/* Sets status, statusMessage (msg; NULL = "") and statusUpdatedAt. */
int report_set_status(report_t *r, enum report_status s, int64_t now, const char *msg);

/* ---- report_json.c -------------------------------------------------------- */

extern const char *const reports_status_names[4]; /* by enum report_status */
extern const char *const reports_group_names[5];  /* by api_report_group; [0] NULL */

/* groupBy name -> enum; STRATA_EINVAL for anything else. */
int report_parse_group(const char *s, enum api_report_group *g);
/* The spec's Report (NULL on ENOMEM) with expiresAt = createdAt +
 * retention_ms (null for 0: kept forever; left out for < 0: the metadata
 * file, where it would go stale when the flag changes). */
json_t *report_json(const report_t *r, int64_t retention_ms);
/* Dumps j (stolen) into the arena as out->json. */
int reports_render(json_t *j, strata_arena_t *arena, api_reports_result_t *out);

/* ---- validate.c ----------------------------------------------------------- */

/* Checks body and fills r's name, start, end, group_by and filter_by; the
 * range must lie within the data that can exist at now (report_check_range). */
int report_validate_body(json_t *body, report_t *r, int64_t now, int64_t data_retention_ms,
                         strata_arena_t *arena, api_reports_result_t *out);
/* 0 when [start, end) lies within the data that can exist at now: start not
 * before now - data_retention_ms (the Unix epoch when 0 or earlier), end not
 * after now + API_REPORTS_MAX_FUTURE_MS.  Else STRATA_EINVAL with a message
 * naming the field and the bound in msg. */
int report_check_range(int64_t now, int64_t data_retention_ms, int64_t start, int64_t end, char *msg,
                       size_t cap);

/* ---- store.c -------------------------------------------------------------- */

/* <dir>/<id><suffix> into buf. */
char *reports_path(const api_reports_t *st, const char *id, const char *suffix, char *buf, size_t cap);
/* Writes r's metadata file (temp + fsync + rename + directory fsync). */
int reports_persist(const api_reports_t *st, const report_t *r);
int reports_table_add(api_reports_t *st, report_t *r);
/* The row of tenant_id's report id, or -1 (also for a malformed id). */
ssize_t reports_table_find(const api_reports_t *st, int32_t tenant_id, const char *id);
int reports_remove_locked(api_reports_t *st, size_t i);
/* Removes reports past retention; returns how many. */
int reports_sweep_locked(api_reports_t *st);

/* ---- file_check.c --------------------------------------------------------- */

/* The statusMessage of a report whose CSV no longer matches its record. */
#define REPORTS_DAMAGED_PREFIX "report file damaged: "
/* SHA-256 (lower-case hex) and size of the whole file at fd (pread, so the
 * fd's offset is left alone). */
int reports_file_digest(int fd, char hex[65], int64_t *size);
/* 0 when the CSV open at fd (sb its fstat) matches r's record, or r has none
 * (made before checksums), or it matched before and has not changed since
 * (same device, inode, size, mtime and ctime; remembered only for a file
 * whose ctime was at least 2 s old when hashed); STRATA_ECORRUPT with why =
 * REPORTS_DAMAGED_PREFIX + the reason; another error for an I/O failure. */
int reports_file_verify_locked(report_t *r, int fd, const struct stat *sb, char *why, size_t cap);

/* ---- workers.c ------------------------------------------------------------ */

int reports_workers_start(api_reports_t *st);
void reports_workers_stop(api_reports_t *st);

#endif
