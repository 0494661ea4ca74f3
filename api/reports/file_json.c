/*
 * file_json.c: the JSON view of a Ready report's CSV (GET .../file with
 * Accept: application/json; docs/reports.md, "The JSON view"), streamed:
 * the CSV is read record by record from the descriptor the store opened, so
 * a large report never sits in memory either way.
 *
 *   {"columns":[{"name":"date","kind":"dimension"},...,{"name":"workloads","kind":"measure"}],
 *    "rows":[["2025-03-10","c1",7,...],...],"asOf":"2025-03-13T00:00:00Z"}
 *
 * Dimensions (date and the group columns) are strings; measures (the numeric
 * columns) JSON numbers, null for an empty cell (an average with no data).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reports.h"
#include "strata_buf.h"
#include "strata_err.h"

static const char *const MEASURES[] = {
    "gpu_allocation_hours",         "gpu_idle_allocated_hours",   "gpu_utilization_avg_pct",
    "gpu_memory_usage_avg_bytes",   "cpu_request_core_hours",     "cpu_usage_core_hours",
    "cpu_memory_request_gib_hours", "cpu_memory_usage_gib_hours", "workloads",
};

#define MAX_COLS 32

struct api_reports_file_json {
    FILE *f;
    int64_t as_of_ms;
    int ncols;
    unsigned char measure[MAX_COLS];
    long nrows;
    int done;
    strata_buf_t out; /* rendered, not yet handed out */
    size_t pos;
    strata_buf_t rec; /* the current record's fields, each NUL-terminated */
    size_t field_at[MAX_COLS];
    int nfields;
};

int api_reports_is_measure(const char *column)
{
    for (size_t i = 0; i < sizeof MEASURES / sizeof MEASURES[0]; i++)
        if (strcmp(column, MEASURES[i]) == 0) return 1;
    return 0;
}

/* Reads one RFC 4180 record into j->rec: 1, 0 at the end of the file, or a
 * negative error.  Fields past MAX_COLS are dropped. */
static int read_record(api_reports_file_json_t *j)
{
    j->rec.len = 0;
    j->nfields = 0;
    int c = getc(j->f);
    if (c == EOF) return ferror(j->f) ? STRATA_EIO : 0;
    int quoted = 0, keep = 1;
    j->field_at[j->nfields++] = 0;
    for (;; c = getc(j->f)) {
        if (c == EOF) {
            if (ferror(j->f)) return STRATA_EIO;
            break;
        }
        if (quoted) {
            if (c == '"') {
                int d = getc(j->f);
                if (d == '"') {
                    strata_buf_put(&j->rec, "\"", 1);
                    continue;
                }
                quoted = 0;
                if (d == EOF) continue;
                c = d; /* fall through to the unquoted handling of d */
            } else {
                if (keep) strata_buf_put(&j->rec, (const char *)&(char){ (char)c }, 1);
                continue;
            }
        }
        if (c == '"') {
            quoted = 1;
        } else if (c == ',') {
            strata_buf_put(&j->rec, "", 1);
            if (j->nfields < MAX_COLS)
                j->field_at[j->nfields++] = j->rec.len;
            else
                keep = 0;
        } else if (c == '\n') {
            break;
        } else if (c != '\r' && keep) {
            strata_buf_put(&j->rec, (const char *)&(char){ (char)c }, 1);
        }
    }
    strata_buf_put(&j->rec, "", 1);
    return j->rec.failed ? STRATA_ENOMEM : 1;
}

static const char *field(const api_reports_file_json_t *j, int i)
{
    return i < j->nfields ? j->rec.data + j->field_at[i] : "";
}

static void put_measure(strata_buf_t *b, const char *s)
{
    char *end;
    double v = *s ? strtod(s, &end) : NAN;
    if (*s && (*end || !isfinite(v))) v = NAN;
    if (isnan(v))
        STRATA_BUF_LIT(b, "null");
    else
        strata_buf_double(b, v);
}

/* Renders the next part of the document into j->out. */
static int fill(api_reports_file_json_t *j)
{
    j->out.len = 0;
    j->pos = 0;
    int rc = read_record(j);
    if (rc < 0) return rc;
    if (rc == 0) {
        if (j->ncols == 0) return STRATA_EIO; /* not even a header */
        STRATA_BUF_LIT(&j->out, "],\"asOf\":\"");
        strata_buf_time_rfc3339(&j->out, j->as_of_ms);
        STRATA_BUF_LIT(&j->out, "\"}");
        j->done = 1;
    } else if (j->ncols == 0) {
        j->ncols = j->nfields;
        STRATA_BUF_LIT(&j->out, "{\"columns\":[");
        for (int i = 0; i < j->ncols; i++) {
            j->measure[i] = (unsigned char)api_reports_is_measure(field(j, i));
            if (i) STRATA_BUF_LIT(&j->out, ",");
            STRATA_BUF_LIT(&j->out, "{\"name\":");
            strata_buf_json_string(&j->out, field(j, i));
            if (j->measure[i])
                STRATA_BUF_LIT(&j->out, ",\"kind\":\"measure\"}");
            else
                STRATA_BUF_LIT(&j->out, ",\"kind\":\"dimension\"}");
        }
        STRATA_BUF_LIT(&j->out, "],\"rows\":[");
    } else {
        if (j->nrows++) STRATA_BUF_LIT(&j->out, ",");
        STRATA_BUF_LIT(&j->out, "[");
        for (int i = 0; i < j->ncols; i++) {
            if (i) STRATA_BUF_LIT(&j->out, ",");
            if (j->measure[i])
                put_measure(&j->out, field(j, i));
            else
                strata_buf_json_string(&j->out, field(j, i));
        }
        STRATA_BUF_LIT(&j->out, "]");
    }
    return j->out.failed ? STRATA_ENOMEM : 0;
}

int api_reports_file_json_new(int fd, int64_t as_of_ms, api_reports_file_json_t **out)
{
    api_reports_file_json_t *j = calloc(1, sizeof *j);
    FILE *f = j ? fdopen(fd, "rb") : NULL;
    if (!f) {
        free(j);
        close(fd);
        return STRATA_ENOMEM;
    }
    j->f = f;
    j->as_of_ms = as_of_ms;
    strata_buf_init(&j->out, NULL, 4096);
    strata_buf_init(&j->rec, NULL, 1024);
    *out = j;
    return 0;
}

ssize_t api_reports_file_json_read(api_reports_file_json_t *j, char *buf, size_t max)
{
    size_t n = 0;
    while (n < max) {
        if (j->pos == j->out.len) {
            if (j->done) break;
            int rc = fill(j);
            if (rc) return rc;
            continue;
        }
        size_t k = j->out.len - j->pos;
        if (k > max - n) k = max - n;
        memcpy(buf + n, j->out.data + j->pos, k);
        j->pos += k;
        n += k;
    }
    return (ssize_t)n;
}

void api_reports_file_json_free(api_reports_file_json_t *j)
{
    if (!j) return;
    fclose(j->f);
    strata_buf_free(&j->out);
    strata_buf_free(&j->rec);
    free(j);
}
