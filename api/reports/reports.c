/*
 * reports.c: the HTTP-facing calls of the report store: create, get, delete
 * and download (docs/reports.md, "What the HTTP handlers call").  The rest of
 * the store is in store.c (table, persistence, open/close, retention),
 * workers.c (generation), validate.c (the POST body), report_json.c (a
 * report's JSON) and list.c (list and count); reports_internal.h lists them.
 * The CSV writer and the aggregation live in reports_csv.c, the generator
 * over the metric store in reports_gen.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports_internal.h"
#include "strata_fs.h"
#include "strata_err.h"
#include "strata_log.h"

/* A random (version 4) RFC 4122 uuid, lower-case. */
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
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
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

int api_reports_create(api_reports_t *st, int32_t tenant_id, const char *created_by, const char *body,
                       size_t len, strata_arena_t *arena, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (!st || !body || !arena) return STRATA_EINVAL;
    json_error_t e;
    json_t *j = json_loadb(body, len, 0, &e);
    if (!j)
        return reports_error(out, arena, STRATA_EINVAL, "malformed JSON at line %d, column %d: %s", e.line,
                             e.column, e.text);
    report_t *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(j);
        return STRATA_ENOMEM;
    }
    int rc = report_validate_body(j, r, reports_now(st), st->opt.data_retention_ms, arena, out);
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
            rc = reports_error(out, arena, STRATA_ECONFLICT, "a report named \"%s\" already exists", r->name);
            report_free(r);
            return rc;
        }
    r->created_at = reports_now(st);
    r->seq = st->next_seq++;
    if ((rc = report_set_status(r, ST_PENDING, r->created_at, "Waiting for a worker")) ||
        (rc = reports_persist(st, r)) || (rc = reports_table_add(st, r))) {
        pthread_mutex_unlock(&st->mu);
        report_free(r);
        return rc;
    }
    rc = reports_render(report_json(r, reports_retention(st)), arena, out);
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
    ssize_t i = reports_table_find(st, tenant_id, id);
    int rc = i < 0 ? STRATA_ENOTFOUND
                   : reports_render(report_json(st->r[i], reports_retention(st)), arena, out);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int api_reports_delete(api_reports_t *st, int32_t tenant_id, const char *id)
{
    pthread_mutex_lock(&st->mu);
    ssize_t i = reports_table_find(st, tenant_id, id);
    int rc = i < 0 ? STRATA_ENOTFOUND : reports_remove_locked(st, (size_t)i);
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
        if (isalnum(*s) || strchr("!#$&+-.^_`|~", *s))
            *p++ = (char)*s;
        else
            p += sprintf(p, "%%%02X", *s);
    }
    *p = 0;
    return buf;
}

int api_reports_open_file(api_reports_t *st, int32_t tenant_id, const char *id, strata_arena_t *arena,
                          api_reports_file_t *file, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    file->fd = -1;
    pthread_mutex_lock(&st->mu);
    ssize_t i = reports_table_find(st, tenant_id, id);
    int rc = 0;
    if (i < 0) {
        rc = STRATA_ENOTFOUND;
    } else {
        report_t *r = st->r[i];
        if (r->status == ST_FAILED) {
            rc = strncmp(r->status_message, REPORTS_DAMAGED_PREFIX, strlen(REPORTS_DAMAGED_PREFIX)) == 0
                     ? reports_error(out, arena, STRATA_ECONFLICT, "%s", r->status_message)
                     : reports_error(out, arena, STRATA_ECONFLICT, "report generation failed: %s",
                                     r->status_message);
        } else if (r->status != ST_READY) {
            rc = reports_error(out, arena, STRATA_ECONFLICT, "report is not ready (status %s)",
                               reports_status_names[r->status]);
            out->retry_after_s = API_REPORTS_RETRY_AFTER_S;
        } else {
            char path[4096];
            int fd = open(reports_path(st, r->id, ".csv", path, sizeof path), O_RDONLY | O_CLOEXEC);
            struct stat sb;
            char why[256];
            int vrc = 0;
            if (fd < 0 || fstat(fd, &sb)) {
                rc = strata_errno_to_err(errno);
                strata_error("report file open failed", "path=%s err=\"%s\"", path, strerror(errno));
                if (fd >= 0) close(fd);
            } else if ((vrc = reports_file_verify_locked(r, fd, &sb, why, sizeof why)) != 0) {
                /* Checked before anything is sent: damage can still be answered.
                 * A damaged file makes the report Failed for good; its CSV stays
                 * for inspection until the next open removes it as an orphan. */
                close(fd);
                if (vrc == STRATA_ECORRUPT) {
                    report_set_status(r, ST_FAILED, reports_now(st), why);
                    reports_persist(st, r);
                    char q[400];
                    strata_error("report file damaged, failed", "id=%s err=%s", r->id,
                                 strata_log_quote(q, sizeof q, why));
                    rc = reports_error(out, arena, STRATA_ECONFLICT, "%s", why);
                } else {
                    rc = vrc;
                    strata_error("report file read failed", "path=%s err=\"%s\"", path, strata_strerror(vrc));
                }
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
                    file->group_by = r->group_by;
                    file->as_of_ms = r->status_updated_at < r->end ? r->status_updated_at : r->end;
                }
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}
