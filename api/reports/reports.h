/*
 * reports.h: consumption reports (docs/reports.md): the report store, its
 * background workers, the CSV writer and the pure aggregation a generator
 * uses to turn workload samples into rows.
 *
 * The store keeps each report's metadata and CSV file under
 * <data-dir>/reports/ (one JSON file and one CSV per report, each written to a
 * temp file, fsynced, renamed into place and the directory fsynced; see
 * docs/reports.md).  Workers take Pending reports in creation order and call
 * the generate callback given at open; the callback is the only part that
 * reads the metric store, so this module knows nothing of tsdb queries.
 *
 * Every HTTP-facing call renders its answer as JSON into the caller's arena,
 * in the exact shape of the Run:ai spec's schemas (Report, {"reports": [...],
 * "next": N}, {"count": N}).  Errors: STRATA_EINVAL (bad input; result.error
 * says which field and why, for the 400 body), STRATA_ECONFLICT (duplicate
 * name; file not ready), STRATA_ENOTFOUND (unknown, malformed or other
 * tenant's id), STRATA_EIO/ENOSPC (persistence failed), STRATA_ENOMEM.
 * All store functions are thread-safe.
 */
#ifndef API_REPORTS_H
#define API_REPORTS_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "strata_arena.h"
#include "read.h"
#include "tsdb.h"

typedef struct api_reports api_reports_t;
typedef struct api_report_csv api_report_csv_t;

enum api_report_group {
    API_REPORT_GROUP_NONE = 0,   /* one row per workload, every group column */
    API_REPORT_GROUP_NODEPOOL,   /* "Nodepool"   -> nodepool */
    API_REPORT_GROUP_PROJECT,    /* "Project"    -> project_id,project_name */
    API_REPORT_GROUP_DEPARTMENT, /* "Department" -> department_id,department_name */
    API_REPORT_GROUP_CLUSTER,    /* "Cluster"    -> cluster_id */
};

/* What a generator is asked to produce.  Read-only; valid during the
 * generate call only.  filter_by holds the POST body's terms as sent, each
 * "projectName==X", "departmentName==X" or "clusterId==X" (already
 * validated); api_reports_filter_match() applies them. */
typedef struct api_report_request {
    const char *id;
    const char *name;
    int32_t tenant_id;
    int64_t start_ms, end_ms; /* [start, end), ms since the epoch */
    enum api_report_group group_by;
    const char *const *filter_by;
    size_t nfilter;
} api_report_request_t;

/* Fills the CSV: call api_reports_csv_row() once per row, checking *cancelled
 * between workloads or days; return 0, or a negative STRATA_E* code with a
 * human message in errmsg (it becomes the report's statusMessage).  Called
 * from worker threads, possibly several at once (one report each). */
typedef int (*api_report_generate_fn)(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                                      const volatile int *cancelled, char *errmsg, size_t errcap);

typedef struct api_reports_options {
    int workers;               /* background generator threads; 0 = none (tests call
                                     api_reports_run_one); default from init: 1 */
    int64_t retention_ms;      /* reports older than this (by createdAt) are removed;
                                     default 30d; 0 = keep forever */
    int64_t sweep_interval_ms; /* how often workers apply retention; default 60 s */
    int64_t data_retention_ms; /* the metric store's retention (--retention): a report may
                                     not start before now - this; 0 = data kept forever
                                     (then the Unix epoch is the lower bound) */
    api_report_generate_fn generate;
    void *generate_ctx;
    int64_t (*now_ms)(void *ctx); /* clock; NULL = CLOCK_REALTIME (tests inject one) */
    void *now_ctx;
} api_reports_options_t;

void api_reports_options_init(api_reports_options_t *o);

/* Opens (creating when missing) <data_dir>/reports/, loads every report,
 * deletes leftover temp files and orphan CSVs, puts reports found Processing
 * (a crash interrupted them) back to Pending, removes reports past retention,
 * and starts the workers. */
int api_reports_open(const char *data_dir, const api_reports_options_t *opt, api_reports_t **out);
/* Stops the workers: a generation in progress is cancelled, its temp file
 * discarded and the report left Pending, so the next open generates it again. */
void api_reports_close(api_reports_t *st);

/* A rendered answer: json (NUL-terminated, in the caller's arena) on
 * success; on STRATA_EINVAL or STRATA_ECONFLICT, error holds the message for
 * the error body (also in the arena, or static). */
typedef struct api_reports_result {
    char *json;
    size_t len;
    int64_t total; /* list: matches before paging; count: the count */
    const char *error;
    int retry_after_s; /* > 0: worth asking again after this long (file not ready yet) */
} api_reports_result_t;

/* Retry-After of a file asked for while its report is Pending or Processing. */
#define API_REPORTS_RETRY_AFTER_S 5

/* POST /org-unit/reports.  body is the request body (not NUL-terminated).
 * Validates it as ReportRequestFields (name, start, end required, name at most
 * API_REPORTS_MAX_NAME_BYTES; start < end; start not before now -
 * data_retention_ms (the Unix epoch when 0), end not after now +
 * API_REPORTS_MAX_FUTURE_MS;
 * groupBy one of the enum or null; filterBy items matching the spec's
 * pattern; unknown fields ignored), then stores a Pending report.  json is
 * the Report (answer 202).  STRATA_EINVAL (error says where: the field, or
 * the line and column of malformed JSON); STRATA_ECONFLICT when the tenant
 * already has a report with that name. */
int api_reports_create(api_reports_t *st, int32_t tenant_id, const char *created_by, const char *body,
                       size_t len, strata_arena_t *arena, api_reports_result_t *out);

/* A report's name: at most this many bytes (UTF-8), else a 400. */
#define API_REPORTS_MAX_NAME_BYTES 256
/* A report's end: at most this far past now (ingest's future allowance). */
#define API_REPORTS_MAX_FUTURE_MS  (10 * 60 * 1000)
/* A report interrupted by this many crashes in a row is marked Failed. */
#define API_REPORTS_MAX_ATTEMPTS   3

#define API_REPORTS_MAX_FILTERS    10
#define API_REPORTS_DEFAULT_LIMIT  50
#define API_REPORTS_MAX_LIMIT      500

/* GET /org-unit/reports parameters, already split by the HTTP layer. */
typedef struct api_reports_query {
    const char *const *filter_by; /* "field<op>value": field name|status|createdAt|createdBy|
                                     groupBy, op == != <= >= =@ !@ =^ =$ (dates: == != <= >=
                                     compare instants; the others apply to the rendered text;
                                     groupBy == and != take the enum's values, a report without
                                     groupBy is "") */
    size_t nfilter;               /* at most API_REPORTS_MAX_FILTERS */
    const char *sort_by;          /* name|status|createdAt|createdBy|groupBy; NULL = createdAt */
    const char *sort_order;       /* "asc" (NULL) or "desc" */
    int64_t offset;               /* >= 0 */
    int64_t limit;                /* 1..500; 0 = 50 */
    const char *search;           /* case-insensitive substring of name; NULL/"" = none */
} api_reports_query_t;

void api_reports_query_init(api_reports_query_t *q);

/* {"reports": [Report...], "next": N}, next (the offset of the following
 * page) only when more remain. */
int api_reports_list(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                     strata_arena_t *arena, api_reports_result_t *out);
/* {"count": N}: filters and search apply; sort, offset and limit do not. */
int api_reports_count(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                      strata_arena_t *arena, api_reports_result_t *out);
/* The Report (with expiresAt: createdAt + retention, null when reports are
 * kept forever).  STRATA_ENOTFOUND for a malformed id or another tenant's. */
int api_reports_get(api_reports_t *st, int32_t tenant_id, const char *id, strata_arena_t *arena,
                    api_reports_result_t *out);
/* Removes the report and its file (answer 204); a generation in progress is
 * cancelled and its temp file discarded by the worker. */
int api_reports_delete(api_reports_t *st, int32_t tenant_id, const char *id);

/* GET /org-unit/reports/{id}/file.  Ready: fd open for reading at offset 0
 * (the caller closes it; it stays readable even if the report is deleted
 * meanwhile), size in bytes, filename "<name>.csv" and content_disposition,
 * a ready header value `attachment; filename="..."; filename*=UTF-8''...`
 * (ASCII fallback with unsafe characters replaced, RFC 6266/5987 encoded
 * original), both in the arena.  Pending/Processing: STRATA_ECONFLICT with
 * error "report is not ready (status Pending)" and retry_after_s set; Failed:
 * STRATA_ECONFLICT with error = the statusMessage.  group_by and as_of_ms (the
 * report's end, or when it became Ready if that is earlier) are set for a
 * Ready report: what api_reports_csv_json needs. */
typedef struct api_reports_file {
    int fd;
    int64_t size;
    const char *filename;
    const char *content_disposition;
    enum api_report_group group_by;
    int64_t as_of_ms;
} api_reports_file_t;

int api_reports_open_file(api_reports_t *st, int32_t tenant_id, const char *id, strata_arena_t *arena,
                          api_reports_file_t *file, api_reports_result_t *out);

/* The JSON view of a Ready report's CSV (docs/reports.md, "The JSON view"),
 * produced a piece at a time: {"columns":[{"name":..,"kind":"dimension"|
 * "measure"}],"rows":[[...],...],"asOf":"<RFC 3339>"}; dimensions are
 * strings, measures numbers (null for an empty cell).  new takes fd over
 * (closed by free, also when new fails); read fills buf with up to max bytes:
 * the count, 0 at the end, a negative STRATA_E* on a read error. */
typedef struct api_reports_file_json api_reports_file_json_t;
int api_reports_file_json_new(int fd, int64_t as_of_ms, api_reports_file_json_t **out);
ssize_t api_reports_file_json_read(api_reports_file_json_t *j, char *buf, size_t max);
void api_reports_file_json_free(api_reports_file_json_t *j);
/* 1 for a CSV column that is a measure (a number), 0 for a dimension. */
int api_reports_is_measure(const char *column);

/* Applies retention now (workers also do every sweep_interval_ms).  Returns
 * how many reports were removed, or a negative error. */
int api_reports_sweep(api_reports_t *st);

/* Generates the oldest Pending report in the calling thread (for stores
 * opened with workers = 0).  Returns 1 when one was processed (whatever its
 * outcome), 0 when none was Pending. */
int api_reports_run_one(api_reports_t *st);

/* Waits until no report is Pending or Processing, at most timeout_ms:
 * 0 or STRATA_ETIMEOUT.  For shutdown paths and tests. */
int api_reports_wait_idle(api_reports_t *st, int64_t timeout_ms);

/* ---- CSV ------------------------------------------------------------------ */

/* One consumption row (docs/reports.md, "The CSV").  Group columns not used by the
 * report's groupBy are ignored (NULL prints as empty).  A NaN average (no
 * data that day) prints as an empty cell; other numbers in shortest
 * round-trip form. */
typedef struct api_report_row {
    int64_t day_ms; /* UTC midnight of the row's day */
    const char *cluster_id;
    const char *department_id, *department_name;
    const char *project_id, *project_name;
    const char *nodepool;
    const char *workload_id, *workload_name;
    double gpu_allocation_hours;
    double gpu_idle_allocated_hours;
    double gpu_utilization_avg_pct;
    double gpu_memory_usage_avg_bytes;
    double cpu_request_core_hours;
    double cpu_usage_core_hours;
    double cpu_memory_request_gib_hours;
    double cpu_memory_usage_gib_hours;
    int64_t workloads;
} api_report_row_t;

/* The header line for a groupBy (with its trailing "\n"; static). */
const char *api_reports_csv_header(enum api_report_group group_by);
/* Appends one row.  STRATA_EIO/ENOSPC when the write fails. */
int api_reports_csv_row(api_report_csv_t *csv, const api_report_row_t *row);
/* Rows written so far. */
int64_t api_reports_csv_rows(const api_report_csv_t *csv);

/* A CSV writer over a caller's open FILE (header written at once); for tools
 * and tests.  The store makes its own for generate.  Free with
 * api_reports_csv_free (does not close f). */
int api_reports_csv_new(FILE *f, enum api_report_group group_by, api_report_csv_t **out);
void api_reports_csv_free(api_report_csv_t *csv);

/* ---- aggregation ----------------------------------------------------------- */

/* One series' samples, ascending by time with unique timestamps, from at
 * least `staleness` before the report's start (counters: include the last
 * sample before start, the baseline of the first day's increase). */
typedef struct api_report_series {
    const tsdb_sample_t *s;
    size_t n;
} api_report_series_t;

/* One workload's identity and the sources of every CSV column.  A workload
 * spread over several nodepools may be passed once per nodepool with the
 * series of its pods there. */
typedef struct api_report_workload {
    const char *workload_id, *workload_name;
    const char *cluster_id;
    const char *department_id, *department_name;
    const char *project_id, *project_name;
    const char *nodepool;
    api_report_series_t gpu_allocation;  /* runai_workload_gpu_allocation (devices) */
    const api_report_series_t *gpu_util; /* DCGM_FI_DEV_GPU_UTIL, one per GPU (%) */
    size_t ngpu_util;
    const api_report_series_t *gpu_fb_used; /* DCGM_FI_DEV_FB_USED, one per GPU (MiB) */
    size_t ngpu_fb_used;
    const api_report_series_t *cpu_request; /* requests{resource="cpu"} per container (cores) */
    size_t ncpu_request;
    const api_report_series_t *cpu_usage; /* container_cpu_usage_seconds_total (counter, s) */
    size_t ncpu_usage;
    const api_report_series_t *mem_request; /* requests{resource="memory"} (bytes) */
    size_t nmem_request;
    const api_report_series_t *mem_usage; /* container_memory_working_set_bytes */
    size_t nmem_usage;
} api_report_workload_t;

typedef struct api_report_agg_params {
    int64_t staleness_ms;      /* holding limit, default 5m */
    int64_t gpu_idle_after_ms; /* a GPU at 0% this long is idle, default 5m */
} api_report_agg_params_t;

void api_reports_agg_params_init(api_report_agg_params_t *p);

/* 1 when the workload passes req's filterBy (terms on one field are OR'ed,
 * different fields AND'ed; an empty list passes everything), else 0. */
int api_reports_filter_match(const api_report_request_t *req, const api_report_workload_t *w);

/* Computes the report's rows: for every UTC day overlapping [start, end) and
 * every group with at least one workload present that day (a workload is
 * present when any of its series holds a value, or a counter sample falls,
 * within the day's part of the range), the integrals under the holding rule
 * (docs/reports.md, "Aggregation") over the day's part of [start, end):
 *   gpu_allocation_hours        integral of allocation, device-hours
 *   gpu_idle_allocated_hours    integral of allocation x idle GPUs / reporting GPUs
 *   gpu_utilization_avg_pct     time-weighted mean over GPU-time (NaN: none)
 *   gpu_memory_usage_avg_bytes  the same over FB used x 1048576 (NaN: none)
 *   cpu_request_core_hours      sum of integrals, core-hours
 *   cpu_usage_core_hours        counter increase (reset-aware, the counter rule of
 *                               docs/reports.md: samples in [day start, day end)
 *                               against the last one before) / 3600
 *   cpu_memory_*_gib_hours      sum of integrals / 2^30, GiB-hours
 *   workloads                   workloads present
 * Workloads failing filterBy are skipped.  Rows are ordered by day, then by
 * the group columns (strcmp, in column order).  The array lives in arena.
 * Checks *cancelled (may be NULL) between workloads: STRATA_ECLOSED when set. */
int api_reports_aggregate(const api_report_request_t *req, const api_report_workload_t *w, size_t nw,
                          const api_report_agg_params_t *p, const volatile int *cancelled,
                          strata_arena_t *arena, api_report_row_t **rows, size_t *nrows);

/* One workload's sums over one UTC day (the day's part of the range), before
 * grouping: integrals in value x ms, the counter increase in its unit. */
typedef struct api_report_day_totals {
    double alloc_ms, idle_ms;
    double util_sum, util_held; /* integral of utilization, and ms it held */
    double fb_sum, fb_held;     /* integral of FB used in bytes, and ms it held */
    double cpu_req_ms, cpu_inc_s;
    double mem_req_ms, mem_use_ms;
    int present; /* some series held a value, or a counter sample fell, that day */
} api_report_day_totals_t;

/* The totals of workload x for each of the ndays UTC days overlapping req's
 * [start, end) (ndays must be that count); what api_reports_aggregate sums. */
int api_reports_workload_days(const api_report_request_t *req, const api_report_workload_t *x,
                              const api_report_agg_params_t *p, api_report_day_totals_t *totals,
                              size_t ndays);

/* One workload's totals on one day (day_ms: its UTC midnight). */
typedef struct api_report_entry {
    int64_t day_ms;
    const api_report_workload_t *w; /* its group columns; borrowed */
    api_report_day_totals_t totals;
} api_report_entry_t;

/* Sums entries into rows, one per day and group, ordered as
 * api_reports_aggregate orders them (entries are sorted in place; a workload
 * with several entries in one day and group counts once).  Rows live in arena
 * and borrow the workloads' strings. */
int api_reports_group(const api_report_request_t *req, api_report_entry_t *entries, size_t n,
                      strata_arena_t *arena, api_report_row_t **rows, size_t *nrows);

/* ---- the generator over the metric store (reports_gen.c) ------------------- */

/* ctx for api_reports_tsdb_generate.  The reader must outlive the report store. */
typedef struct api_reports_tsdb_source {
    const api_read_source_t *reader;
    int64_t staleness_ms;      /* <= 0: 5m (use the daemon's --staleness) */
    int64_t gpu_idle_after_ms; /* <= 0: 5m (--gpu-idle-after) */
    int raw_only;              /* 1: never read rollups (tests compare the two ways) */
    int64_t timeout_ms;        /* deadline of one report's reads, 0 = none (--report-timeout) */
    /* Workload-days computed so far from rollups and from raw samples (all
     * reports; for tests and logs). */
    _Atomic uint64_t days_from_rollups, days_from_raw;
} api_reports_tsdb_source_t;

/* An api_report_generate_fn reading the tenant's series (__tenant__ label)
 * one UTC day at a time: workloads from runai_workload_info (labels of the
 * newest series of each workload_id; nodepool = the first of
 * current_nodepools), pods from runai_pod_info, and every column's source
 * series joined by workload_id or by (namespace, pod).  A day on the hour
 * grid is summed from the 1h rollups (exactly: see docs/reports.md,
 * "Generation from rollups"); a workload-day the rollups cannot give exactly
 * (stale markers, gaps beyond the staleness, ...) and a day off the grid are
 * summed from raw samples with api_reports_workload_days.  Rows go through
 * api_reports_group and api_reports_csv_row.  Pass an
 * api_reports_tsdb_source_t as ctx. */
int api_reports_tsdb_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                              const volatile int *cancelled, char *errmsg, size_t errcap);

#endif
