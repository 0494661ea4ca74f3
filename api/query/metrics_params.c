/*
 * metrics_params.c: the metrics query's parameters (metrics_query.h):
 * metricType, start, end and numberOfSamples into an api_metrics_request_t,
 * with a 400 message that names the parameter, and the options' defaults.
 * docs/metrics.md ("Parameters") has every rule and message.
 */
#include "metrics_query.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "strata_time.h"

void api_metrics_options_init(api_metrics_options_t *o)
{
    o->max_points = 11000;
    o->staleness_ms = 5 * 60 * 1000;
    o->max_range_ms = 0;
    o->max_samples = 50000000;
    o->timeout_ms = 120000;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return STRATA_EINVAL;
}

/* A duration as the flags spell it ("30d", "1h30m", "90s", "250ms"). */
static void fmt_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *u;
        int64_t ms;
    } U[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof U / sizeof U[0] && off < cap; i++) {
        if (ms < U[i].ms) continue;
        int w = snprintf(buf + off, cap - off, "%" PRId64 "%s", ms / U[i].ms, U[i].u);
        if (w < 0) break;
        off += (size_t)w;
        ms %= U[i].ms;
    }
    if (!buf[0]) snprintf(buf, cap, "0s");
}

static int parse_time(const char *name, const char *s, int64_t *out, char *err, size_t cap)
{
    if (!s) return fail(err, cap, "%s is required", name);
    if (strata_time_parse_rfc3339(s, out))
        return fail(err, cap,
                    "%s: invalid date-time \"%.64s\" (want RFC 3339, e.g. "
                    "2024-12-20T14:30:00Z)",
                    name, s);
    return 0;
}

int api_metrics_parse(const char *const *mt, size_t nmt, const char *start, const char *end,
                      const char *nsamples, const api_metrics_options_t *opts, api_metrics_request_t *req,
                      char *err, size_t cap)
{
    if (!req || (nmt && !mt)) return STRATA_EINVAL;
    if (err && cap) err[0] = 0;
    memset(req, 0, sizeof *req);
    size_t given = 0;
    for (size_t i = 0; i < nmt; i++) {
        const char *p = mt[i];
        if (!p) continue;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char item[64];
            if (len == 0) return fail(err, cap, "metricType: empty value");
            if (len >= sizeof item) return fail(err, cap, "metricType: invalid value \"%.48s...\"", p);
            memcpy(item, p, len);
            item[len] = 0;
            enum api_metric_type t;
            if (api_metrics_type_parse(item, &t))
                return fail(err, cap, "metricType: invalid value \"%s\"", item);
            if (++given > API_METRICS_MAX_TYPES) {
                /* count the rest for the message */
                while (comma) {
                    given++;
                    comma = strchr(comma + 1, ',');
                }
                for (size_t j = i + 1; j < nmt; j++) {
                    if (!mt[j]) continue;
                    given++;
                    for (const char *c = strchr(mt[j], ','); c; c = strchr(c + 1, ',')) given++;
                }
                return fail(err, cap, "metricType: at most %d values allowed, got %zu", API_METRICS_MAX_TYPES,
                            given);
            }
            size_t k = 0;
            while (k < req->ntypes && req->types[k] != t) k++;
            if (k == req->ntypes) req->types[req->ntypes++] = t;
            if (!comma) break;
            p = comma + 1;
        }
    }
    if (given == 0) return fail(err, cap, "metricType is required");
    int rc = parse_time("start", start, &req->start_ms, err, cap);
    if (!rc) rc = parse_time("end", end, &req->end_ms, err, cap);
    if (rc) return rc;
    if (req->end_ms <= req->start_ms) return fail(err, cap, "end must be after start");
    req->samples = API_METRICS_DEFAULT_SAMPLES;
    if (nsamples) {
        const char *p = nsamples;
        int neg = 0, digits = 0;
        uint64_t v = 0;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (v <= 100000) v = v * 10 + (uint64_t)(*p - '0');
        if (!digits || *p || (neg && v) || v > API_METRICS_MAX_SAMPLES)
            return fail(err, cap, "numberOfSamples: must be an integer from 0 to %d, got \"%.32s\"",
                        API_METRICS_MAX_SAMPLES, nsamples);
        req->samples = (uint32_t)v;
    }
    int64_t max_range = opts ? opts->max_range_ms : 0;
    if (max_range > 0 && req->end_ms - req->start_ms > max_range) {
        char a[48], b[48];
        fmt_duration(req->end_ms - req->start_ms, a, sizeof a);
        fmt_duration(max_range, b, sizeof b);
        return fail(err, cap, "end - start is %s, more than the maximum range %s", a, b);
    }
    return 0;
}
