/*
 * strata_buf.h: the one growable text buffer, and the JSON and CSV string
 * writers every response body uses.
 *
 * A buffer grows on the heap (arena NULL; strata_buf_free releases it) or
 * inside a request arena (freed with the arena; strata_buf_free is a no-op).
 * The text is always NUL-terminated.  On allocation failure the buffer sets
 * `failed`, keeps what it has and ignores later writes, so a writer checks
 * once at the end.
 */
#ifndef STRATA_BUF_H
#define STRATA_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "strata_arena.h"

typedef struct strata_buf {
    char *data; /* NULL until the first write */
    size_t len, cap;
    strata_arena_t *arena; /* NULL = heap */
    int failed;
} strata_buf_t;

/* An empty buffer growing in arena (NULL = heap), starting at `hint` bytes
 * (0 = on first write).  A generous hint makes large bodies one allocation. */
void strata_buf_init(strata_buf_t *b, strata_arena_t *arena, size_t hint);
/* Heap buffers only: frees the text.  The buffer is empty afterwards. */
void strata_buf_free(strata_buf_t *b);

/* Room for n more bytes (plus the NUL) at data + len: 1, or 0 when failed. */
int strata_buf_reserve(strata_buf_t *b, size_t n);
void strata_buf_put(strata_buf_t *b, const char *s, size_t n);
void strata_buf_puts(strata_buf_t *b, const char *s);
#define STRATA_BUF_LIT(b, lit) strata_buf_put((b), (lit), sizeof(lit) - 1)
void strata_buf_printf(strata_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as a JSON string literal, quotes included, escaped as jansson's
 * json_dumps() escapes: quote, backslash, \b \f \n \r \t, other control
 * characters as \u00XX; UTF-8 passes through. */
void strata_buf_json_string(strata_buf_t *b, const char *s);
/* s as one CSV field (RFC 4180): quoted when it holds , " CR or LF. */
void strata_buf_csv_field(strata_buf_t *b, const char *s);
/* strata_fmt_double / strata_time_format_rfc3339 written in place. */
void strata_buf_double(strata_buf_t *b, double v);
void strata_buf_time_rfc3339(strata_buf_t *b, int64_t ms);

#endif
