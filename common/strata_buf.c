/*
 * strata_buf.c: the growable text buffer and its JSON/CSV writers
 * (strata_buf.h).
 */
#include "strata_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_fmt.h"
#include "strata_time.h"

void strata_buf_init(strata_buf_t *b, strata_arena_t *arena, size_t hint)
{
    *b = (strata_buf_t){ .arena = arena };
    if (hint) strata_buf_reserve(b, hint);
}

void strata_buf_free(strata_buf_t *b)
{
    if (!b->arena) free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int strata_buf_reserve(strata_buf_t *b, size_t n)
{
    if (b->failed) return 0;
    if (b->len + n + 1 <= b->cap) return 1;
    size_t ncap = b->cap ? b->cap : 1024;
    while (ncap < b->len + n + 1) ncap *= 2;
    char *nd;
    if (b->arena) {
        /* arenas do not realloc: the old text is left behind until the arena goes */
        nd = strata_arena_alloc(b->arena, ncap);
        if (nd && b->len) memcpy(nd, b->data, b->len);
    } else {
        nd = realloc(b->data, ncap);
    }
    if (!nd) {
        b->failed = 1;
        return 0;
    }
    b->data = nd;
    b->cap = ncap;
    b->data[b->len] = '\0';
    return 1;
}

void strata_buf_put(strata_buf_t *b, const char *s, size_t n)
{
    if (!strata_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void strata_buf_puts(strata_buf_t *b, const char *s) { strata_buf_put(b, s, strlen(s)); }

void strata_buf_printf(strata_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !strata_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void strata_buf_json_string(strata_buf_t *b, const char *s)
{
    strata_buf_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        strata_buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        char esc[8];
        switch (c) {
        case '"': STRATA_BUF_LIT(b, "\\\""); break;
        case '\\': STRATA_BUF_LIT(b, "\\\\"); break;
        case '\b': STRATA_BUF_LIT(b, "\\b"); break;
        case '\f': STRATA_BUF_LIT(b, "\\f"); break;
        case '\n': STRATA_BUF_LIT(b, "\\n"); break;
        case '\r': STRATA_BUF_LIT(b, "\\r"); break;
        case '\t': STRATA_BUF_LIT(b, "\\t"); break;
        default: strata_buf_put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04X", c)); break;
        }
    }
    strata_buf_put(b, run, (size_t)(s - run));
    strata_buf_put(b, "\"", 1);
}

void strata_buf_csv_field(strata_buf_t *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        strata_buf_puts(b, s);
        return;
    }
    strata_buf_put(b, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        strata_buf_put(b, s, (size_t)(q - s));
        STRATA_BUF_LIT(b, "\"\"");
    }
    strata_buf_puts(b, s);
    strata_buf_put(b, "\"", 1);
}

void strata_buf_double(strata_buf_t *b, double v)
{
    if (!strata_buf_reserve(b, STRATA_FMT_DOUBLE_BUFSZ)) return;
    int n = strata_fmt_double(v, b->data + b->len, STRATA_FMT_DOUBLE_BUFSZ);
    if (n < 0)
        b->failed = 1;
    else
        b->len += (size_t)n;
}

void strata_buf_time_rfc3339(strata_buf_t *b, int64_t ms)
{
    if (!strata_buf_reserve(b, STRATA_TIME_RFC3339_BUFSZ)) return;
    int n = strata_time_format_rfc3339(ms, b->data + b->len, STRATA_TIME_RFC3339_BUFSZ);
    if (n < 0)
        b->failed = 1;
    else
        b->len += (size_t)n;
}
