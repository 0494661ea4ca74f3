/*
 * validate.c: the POST /org-unit/reports body, checked as the spec's
 * ReportRequestFields (docs/reports.md, "POST body validation"); every
 * refusal names the field and why, for the 400 body.
 */
#include <jansson.h>
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

int report_validate_body(json_t *body, report_t *r, strata_arena_t *arena, api_reports_result_t *out)
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
    int rc;
    if ((rc = time_field(body, "start", &r->start, arena, out))) return rc;
    if ((rc = time_field(body, "end", &r->end, arena, out))) return rc;
    if (r->start >= r->end) return reports_error(out, arena, STRATA_EINVAL, "end: must be after start");

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
