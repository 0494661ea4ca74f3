/*
 * validate.c: the POST /org-unit/reports body, checked as the spec's
 * ReportRequestFields (docs/reports.md, "POST body validation"); every
 * refusal names the field and why, for the 400 body.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports_internal.h"
#include "strata_err.h"
#include "strata_time.h"

/* ^(projectName|departmentName|clusterId)(==).+$ with ECMAScript's '.', which
 * matches anything but line terminators (\n \r U+2028 U+2029). */
static int filter_term_ok(const char *s)
{
    static const char *const fields[] = { "projectName", "departmentName", "clusterId" };
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
    if (!v) return reports_error(out, arena, STRATA_EINVAL, "%s: required field is missing", key);
    if (!json_is_string(v) || strata_time_parse_rfc3339(json_string_value(v), ms))
        return reports_error(out, arena, STRATA_EINVAL,
                             "%s: must be an RFC 3339 date-time string (e.g. 2024-12-01T00:00:00Z)", key);
    /* An offset can push the instant out of 0000..9999 UTC, which the Report
     * cannot render or store back: refuse it here, not lose it later. */
    char utc[STRATA_TIME_RFC3339_BUFSZ];
    if (strata_time_format_rfc3339(*ms, utc, sizeof utc) < 0)
        return reports_error(out, arena, STRATA_EINVAL, "%s: must lie between years 0000 and 9999 in UTC",
                             key);
    return 0;
}

/* A duration as the flags write it: 15d, 36h, 10m, 30s, else ms. */
static void fmt_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        int64_t unit;
        const char *suffix;
    } u[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        if (ms % u[i].unit == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / u[i].unit), u[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%lldms", (long long)ms);
}

int report_check_range(int64_t now, int64_t data_retention_ms, int64_t start, int64_t end, char *msg,
                       size_t cap)
{
    char when[STRATA_TIME_RFC3339_BUFSZ], dur[32];
    /* the oldest sample the store can hold; never before the Unix epoch */
    int64_t oldest = data_retention_ms > 0 && now - data_retention_ms > 0 ? now - data_retention_ms : 0;
    if (start < oldest) {
        if (strata_time_format_rfc3339(oldest, when, sizeof when) < 0) snprintf(when, sizeof when, "?");
        if (oldest == 0) {
            snprintf(msg, cap, "start: must not be before %s (the Unix epoch)", when);
        } else {
            fmt_duration(data_retention_ms, dur, sizeof dur);
            snprintf(msg, cap,
                     "start: must not be before %s (now - the store's retention of %s: older samples "
                     "are deleted)",
                     when, dur);
        }
        return STRATA_EINVAL;
    }
    int64_t newest = now + API_REPORTS_MAX_FUTURE_MS;
    if (end > newest) {
        if (strata_time_format_rfc3339(newest, when, sizeof when) < 0) snprintf(when, sizeof when, "?");
        fmt_duration(API_REPORTS_MAX_FUTURE_MS, dur, sizeof dur);
        snprintf(msg, cap, "end: must not be after %s (now + %s: no samples can exist later)", when, dur);
        return STRATA_EINVAL;
    }
    return 0;
}

int report_validate_body(json_t *body, report_t *r, int64_t now, int64_t data_retention_ms,
                         strata_arena_t *arena, api_reports_result_t *out)
{
    if (!json_is_object(body))
        return reports_error(out, arena, STRATA_EINVAL, "request body must be a JSON object");
    json_t *name = json_object_get(body, "name");
    if (!name) return reports_error(out, arena, STRATA_EINVAL, "name: required field is missing");
    if (!json_is_string(name)) return reports_error(out, arena, STRATA_EINVAL, "name: must be a string");
    if (json_string_length(name) == 0)
        return reports_error(out, arena, STRATA_EINVAL, "name: must not be empty");
    if (strlen(json_string_value(name)) != json_string_length(name))
        return reports_error(out, arena, STRATA_EINVAL, "name: must not contain NUL characters");
    if (json_string_length(name) > API_REPORTS_MAX_NAME_BYTES)
        return reports_error(out, arena, STRATA_EINVAL, "name: must be at most %d bytes (UTF-8), got %zu",
                             API_REPORTS_MAX_NAME_BYTES, json_string_length(name));
    int rc;
    if ((rc = time_field(body, "start", &r->start, arena, out))) return rc;
    if ((rc = time_field(body, "end", &r->end, arena, out))) return rc;
    if (r->start >= r->end) return reports_error(out, arena, STRATA_EINVAL, "end: must be after start");
    char msg[256];
    if (report_check_range(now, data_retention_ms, r->start, r->end, msg, sizeof msg))
        return reports_error(out, arena, STRATA_EINVAL, "%s", msg);

    json_t *g = json_object_get(body, "groupBy");
    r->group_by = API_REPORT_GROUP_NONE;
    if (g && !json_is_null(g) &&
        (!json_is_string(g) || report_parse_group(json_string_value(g), &r->group_by)))
        return reports_error(out, arena, STRATA_EINVAL,
                             "groupBy: must be one of Nodepool, Project, Department, Cluster, or null");

    json_t *fb = json_object_get(body, "filterBy");
    if (fb && !json_is_array(fb))
        return reports_error(out, arena, STRATA_EINVAL, "filterBy: must be an array of strings");
    size_t nf = fb ? json_array_size(fb) : 0;
    for (size_t i = 0; i < nf; i++) {
        json_t *t = json_array_get(fb, i);
        if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t) ||
            !filter_term_ok(json_string_value(t)))
            return reports_error(out, arena, STRATA_EINVAL,
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
