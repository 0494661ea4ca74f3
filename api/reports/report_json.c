/*
 * report_json.c: a report as the spec's Report JSON (every field always
 * present: groupBy null when unset, filterBy [], statusMessage a string;
 * docs/reports.md, "POST body validation"), the status and groupBy names,
 * and the rendering of an answer into the caller's arena.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "reports_internal.h"
#include "strata_err.h"
#include "strata_time.h"

const char *const reports_status_names[4] = { "Pending", "Processing", "Ready", "Failed" };
const char *const reports_group_names[5] = { NULL, "Nodepool", "Project", "Department", "Cluster" };

int report_parse_group(const char *s, enum api_report_group *g)
{
    for (int i = 1; i <= API_REPORT_GROUP_CLUSTER; i++)
        if (strcmp(s, reports_group_names[i]) == 0) {
            *g = (enum api_report_group)i;
            return 0;
        }
    return STRATA_EINVAL;
}

static json_t *time_json(int64_t ms)
{
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    if (strata_time_format_rfc3339(ms, buf, sizeof buf) < 0) return json_null();
    return json_string(buf);
}

/* The spec's Report: ReportRequestFields + ReportCalculatedFields, plus
 * expiresAt (the schema allows additional properties). */
json_t *report_json(const report_t *r, int64_t retention_ms)
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
    json_object_set_new(o, "groupBy",
                        r->group_by ? json_string(reports_group_names[r->group_by]) : json_null());
    json_object_set_new(o, "filterBy", fb);
    json_object_set_new(o, "status", json_string(reports_status_names[r->status]));
    json_object_set_new(o, "statusUpdatedAt", time_json(r->status_updated_at));
    json_object_set_new(o, "statusMessage", json_string(r->status_message ? r->status_message : ""));
    if (retention_ms >= 0)
        json_object_set_new(o, "expiresAt",
                            retention_ms > 0 && r->created_at <= INT64_MAX - retention_ms
                                ? time_json(r->created_at + retention_ms)
                                : json_null());
    return o;
}

/* Dumps j (stolen) into the arena. */
int reports_render(json_t *j, strata_arena_t *arena, api_reports_result_t *out)
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
