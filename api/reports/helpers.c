/*
 * helpers.c: the small helpers every file of the report store uses: the
 * store's clock, errno and error-message mapping, report ids, and a record's
 * status and memory.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reports_internal.h"
#include "strata_err.h"

int64_t reports_now(const api_reports_t *st)
{
    if (st->opt.now_ms) return st->opt.now_ms(st->opt.now_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int reports_error(api_reports_result_t *out, strata_arena_t *arena, int rc, const char *fmt, ...)
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

int reports_valid_uuid(const char *s)
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

void report_free(report_t *r)
{
    if (!r) return;
    free(r->name);
    free(r->created_by);
    for (size_t i = 0; i < r->nfilter; i++) free(r->filter_by[i]);
    free(r->filter_by);
    free(r->status_message);
    free(r);
}

int report_set_status(report_t *r, enum report_status s, int64_t now, const char *msg)
{
    char *m = strdup(msg ? msg : "");
    if (!m) return STRATA_ENOMEM;
    free(r->status_message);
    r->status_message = m;
    r->status = s;
    r->status_updated_at = now;
    return 0;
}
