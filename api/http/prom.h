/*
 * prom.h: the pieces of the Prometheus HTTP query API that are not routes,
 * internal to api/http (docs/promql.md, "HTTP API"):
 *   - prom_params.c: the request's parameters as Go's r.Form sees them (a
 *     form-encoded POST body first, then the URL's), and Prometheus' time and
 *     duration parameters with its error texts;
 *   - prom_json.c: numbers, timestamps and strings written byte for byte as
 *     Prometheus 2.42's JSON encoder writes them.
 */
#ifndef API_PROM_H
#define API_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "strata_buf.h"

/* ---- parameters --------------------------------------------------------- */

/* Name/value pairs in Go's r.Form order: a form-encoded POST body's, then
 * the URL's.  Everything lives in the call's arena. */
typedef struct api_prom_params {
    const char **names, **values;
    size_t n, cap;
    strata_arena_t *arena;
} api_prom_params_t;

/* Appends the pairs of an application/x-www-form-urlencoded text as Go's
 * url.ParseQuery reads it: pairs split on '&', "+" is a space, %XX escapes;
 * a pair holding ';' or a bad escape is skipped (Go drops it too).  Empty
 * pairs are skipped; a name without '=' has the value "".  STRATA_ENOMEM. */
int api_prom_form_parse(api_prom_params_t *p, const char *text, size_t len);
/* Fills p for a request: its form-encoded body (POST with that Content-Type),
 * then its URL parameters.  STRATA_ENOMEM. */
int api_prom_params_collect(api_call_t *c, api_prom_params_t *p);
/* The first value of name (r.FormValue), NULL when absent. */
const char *api_prom_param(const api_prom_params_t *p, const char *name);
/* Every value of name, in order (r.Form[name]); *out in the arena. */
size_t api_prom_param_all(const api_prom_params_t *p, const char *name, const char ***out);

/* Prometheus' parseTime: unix seconds as a float (rounded to the ms), or RFC
 * 3339, or the two boundary texts of its MinTime/MaxTime.  0 or STRATA_EINVAL. */
int api_prom_parse_time(const char *s, int64_t *ms);
/* The ms of Prometheus' MinTime and MaxTime (series/labels defaults). */
#define API_PROM_MIN_TIME_MS (-9223309901258974000LL)
#define API_PROM_MAX_TIME_MS 9223309901257974999LL
/* Prometheus' parseDuration in nanoseconds: float seconds, or a Prometheus
 * duration ("1m30s").  0, or STRATA_EINVAL (*overflow = 1 when the float
 * does not fit int64 nanoseconds, for its other message). */
int api_prom_parse_duration(const char *s, int64_t *ns, int *overflow);
/* s quoted as Go's %q quotes it. */
void api_prom_quote(strata_buf_t *b, const char *s);

/* The parameters with their checks; each answers Prometheus' 400 and
 * returns 0 when the value is bad, else 1.
 * api_prom_time_param: parseTimeParam (absent or "" is dflt; "Invalid time
 * value for '<name>': ..."); api_prom_required_time: query_range's start and
 * end (no default, no wrapping text); api_prom_duration_param: a duration in
 * ns; api_prom_budget: the request's read budget, --query-timeout lowered by
 * the timeout parameter. */
int api_prom_time_param(api_call_t *c, const api_prom_params_t *p, const char *name, int64_t dflt,
                        int64_t *out);
int api_prom_required_time(api_call_t *c, const api_prom_params_t *p, const char *name, int64_t *out);
int api_prom_duration_param(api_call_t *c, const char *name, const char *v, int64_t *ns);
int api_prom_budget(api_call_t *c, const api_prom_params_t *p, api_read_budget_t *b);

/* ---- JSON ----------------------------------------------------------------- */

/* A JSON string as Go's encoder escapes it (", \, \n, \r, \t, other control
 * characters and < > & as \u00XX, U+2028/2029). */
void api_prom_json_string(strata_buf_t *b, const char *s);
/* A vector or matrix point's value, quoted: strconv 'f' with the shortest
 * digits, 'e' when |v| < 1e-6 or >= 1e21 ("1e+21", "1e-07"), "+Inf", "-Inf",
 * "NaN". */
void api_prom_json_point_value(strata_buf_t *b, double v);
/* A vector or matrix point's time: seconds with the ms as three digits,
 * none when whole (1435781451.120, 1435781451). */
void api_prom_json_point_time(strata_buf_t *b, int64_t ms);
/* A scalar's (and string's) value, quoted: strconv 'f' shortest, never an
 * exponent ("1000000000000000000000", "0.0000001"). */
void api_prom_json_scalar_value(strata_buf_t *b, double v);
/* A scalar's time: Go's JSON float of ms / 1000 (1435781451.12). */
void api_prom_json_scalar_time(strata_buf_t *b, int64_t ms);
/* Labels as a JSON object in the given (sorted) order, the tenant label left out. */
void api_prom_json_labels(strata_buf_t *b, const tsdb_label_t *l, size_t n);

/* ---- answers ----------------------------------------------------------------- */

/* {"status":"error","errorType":...,"error":msg} with the status and
 * errorType api_prom_error_type() pairs with err. */
int api_prom_reply_error(api_call_t *c, int err, const char *msg);
/* 400 bad_data "invalid parameter \"<name>\": <msg>". */
int api_prom_reply_bad_param(api_call_t *c, const char *name, const char *msg);
/* A failed read or evaluation: the deadline 503 timeout, the sample limit
 * 422 execution (Prometheus' texts), else by api_prom_error_type(). */
int api_prom_reply_read_error(api_call_t *c, api_read_budget_t *b, int rc);
/* 200 {"status":"success","data":<data>[,"warnings":[...]]}; data is JSON text. */
int api_prom_reply_data(api_call_t *c, const char *data, size_t len, const char *const *warnings,
                        size_t nwarnings);

#endif
