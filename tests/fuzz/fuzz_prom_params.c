/*
 * fuzz_prom_params.c: libFuzzer target for the Prometheus query API's text
 * handling (api/http/prom_params.c, prom_json.c), which every query string
 * and form-encoded body goes through.
 *
 * 1. The input as a form body: api_prom_form_parse never reads past it, every
 *    name and value it returns is no longer than the input, and the pairs,
 *    percent-encoded again and parsed, come back the same.
 * 2. The input as a string: api_prom_parse_time and api_prom_parse_duration
 *    answer 0 or STRATA_EINVAL, and the same twice.
 * 3. The first 8 bytes as a float64: the point and scalar values strtod back
 *    to the same bits (NaN and infinities as Prometheus' names); the input as
 *    a JSON string (when it is UTF-8 without NUL) decodes with jansson to
 *    itself.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "prom.h"

static void check_value(void (*f)(strata_buf_t *, double), double v)
{
    strata_buf_t b;
    strata_buf_init(&b, NULL, 0);
    f(&b, v);
    if (b.failed || b.len < 3 || b.data[0] != '"' || b.data[b.len - 1] != '"') abort();
    b.data[b.len - 1] = '\0';
    const char *s = b.data + 1;
    if (isnan(v)) {
        if (strcmp(s, "NaN") != 0) abort();
    } else if (isinf(v)) {
        if (strcmp(s, v > 0 ? "+Inf" : "-Inf") != 0) abort();
    } else {
        double back = strtod(s, NULL);
        if (memcmp(&back, &v, sizeof v) != 0) abort();
    }
    strata_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    strata_arena_t *a = strata_arena_new(0);
    if (!a) return 0;
    api_prom_params_t p = { .arena = a };
    if (api_prom_form_parse(&p, (const char *)data, size) == 0) {
        strata_buf_t enc;
        strata_buf_init(&enc, a, 0);
        for (size_t i = 0; i < p.n; i++) {
            if (strlen(p.names[i]) > size || strlen(p.values[i]) > size) abort();
            if (i) strata_buf_puts(&enc, "&");
            for (int part = 0; part < 2; part++) {
                for (const unsigned char *s = (const unsigned char *)(part ? p.values[i] : p.names[i]); *s;
                     s++)
                    strata_buf_printf(&enc, "%%%02X", *s);
                if (!part) strata_buf_puts(&enc, "=");
            }
        }
        api_prom_params_t q = { .arena = a };
        if (!enc.failed && api_prom_form_parse(&q, enc.data ? enc.data : "", enc.len) == 0) {
            /* pairs whose name is empty after a cut at a NUL come back as "=v": still kept */
            if (q.n != p.n) abort();
            for (size_t i = 0; i < p.n; i++)
                if (strcmp(p.names[i], q.names[i]) != 0 || strcmp(p.values[i], q.values[i]) != 0) abort();
        }
    }
    char *s = strata_arena_strndup(a, (const char *)data, size);
    if (s) {
        int64_t t1 = 0, t2 = 0, d1 = 0, d2 = 0;
        int o1, o2;
        int r1 = api_prom_parse_time(s, &t1), r2 = api_prom_parse_time(s, &t2);
        if (r1 != r2 || (r1 != 0 && r1 != STRATA_EINVAL) || (r1 == 0 && t1 != t2)) abort();
        r1 = api_prom_parse_duration(s, &d1, &o1);
        r2 = api_prom_parse_duration(s, &d2, &o2);
        if (r1 != r2 || (r1 != 0 && r1 != STRATA_EINVAL) || (r1 == 0 && d1 != d2)) abort();
        if (strlen(s) == size && ingest_valid_utf8(s, size)) {
            strata_buf_t b;
            strata_buf_init(&b, a, 0);
            strata_buf_puts(&b, "[");
            api_prom_json_string(&b, s);
            strata_buf_puts(&b, "]");
            json_error_t je;
            json_t *j = b.failed ? NULL : json_loads(b.data, 0, &je);
            if (!j || !json_is_array(j) || strcmp(json_string_value(json_array_get(j, 0)), s) != 0) abort();
            json_decref(j);
        }
    }
    if (size >= 8) {
        double v;
        memcpy(&v, data, 8);
        check_value(api_prom_json_point_value, v);
        check_value(api_prom_json_scalar_value, v);
    }
    strata_arena_free(a);
    return 0;
}
