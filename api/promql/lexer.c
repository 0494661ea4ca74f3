/*
 * lexer.c: PromQL's lexer, a hand-written state machine with the modes and
 * the error texts of Prometheus' promql/parser/lex.go (docs/promql.md,
 * "Parser"): statements, inside braces, and the duration right after '['.
 * Also Go's %q quoting, which Prometheus' messages and String() use.
 */
#include "lexer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "promql_internal.h"

void promql_lex_init(promql_lexer_t *lx, const char *in, int len)
{
    memset(lx, 0, sizeof *lx);
    lx->in = in;
    lx->len = len;
}

/* Decodes one UTF-8 rune at s (n bytes left): its value, or 0xFFFD with
 * length 1 for a bad sequence (Go's utf8.RuneError). */
static long decode_rune(const unsigned char *s, size_t n, int *len)
{
    unsigned c = s[0];
    long cp;
    int l;
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        l = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        l = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        l = 4;
        cp = c & 0x07;
    } else {
        *len = 1;
        return 0xFFFD;
    }
    if ((size_t)l > n) {
        *len = 1;
        return 0xFFFD;
    }
    for (int k = 1; k < l; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *len = 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 1;
        return 0xFFFD;
    }
    *len = l;
    return cp;
}

/* Go's unicode.IsPrint, closely enough: the ASCII graphic characters and
 * space, and above U+00A0 all but format, separator and private-use runes. */
static int go_isprint(long r)
{
    if (r < 0x80) return r >= 0x20 && r < 0x7F;
    if (r <= 0xA0 || r == 0xAD) return 0;
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x206F))
        return 0;
    if (r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF)) return 0;
    /* planes 4 to 13 are unassigned, plane 14 holds tags and variation
     * selectors (only the latter print), 15 and 16 are private use */
    if (r >= 0x32000 && !(r >= 0xE0100 && r <= 0xE01EF)) return 0;
    return 1;
}

static void quote_one(strata_buf_t *b, long r, int width, const unsigned char *raw, char quote)
{
    char tmp[24];
    if (r == 0xFFFD && width == 1 && raw[0] != 0xEF) {
        snprintf(tmp, sizeof tmp, "\\x%02x", raw[0]);
        strata_buf_puts(b, tmp);
        return;
    }
    if (r == quote || r == '\\') {
        tmp[0] = '\\';
        tmp[1] = (char)r;
        strata_buf_put(b, tmp, 2);
        return;
    }
    if (go_isprint(r)) {
        strata_buf_put(b, (const char *)raw, (size_t)width);
        return;
    }
    switch (r) {
    case '\a': strata_buf_puts(b, "\\a"); return;
    case '\b': strata_buf_puts(b, "\\b"); return;
    case '\f': strata_buf_puts(b, "\\f"); return;
    case '\n': strata_buf_puts(b, "\\n"); return;
    case '\r': strata_buf_puts(b, "\\r"); return;
    case '\t': strata_buf_puts(b, "\\t"); return;
    case '\v': strata_buf_puts(b, "\\v"); return;
    }
    if (r < 0x80)
        snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)r);
    else if (r < 0x10000)
        snprintf(tmp, sizeof tmp, "\\u%04lx", r);
    else
        snprintf(tmp, sizeof tmp, "\\U%08lx", r);
    strata_buf_puts(b, tmp);
}

void promql_go_quote(strata_buf_t *b, const char *s, size_t n, int maxrunes)
{
    const unsigned char *u = (const unsigned char *)s;
    strata_buf_put(b, "\"", 1);
    int runes = 0;
    for (size_t i = 0; i < n;) {
        if (maxrunes > 0 && runes == maxrunes) break;
        int w;
        long r = decode_rune(u + i, n - i, &w);
        quote_one(b, r, w, u + i, '"');
        i += (size_t)w;
        runes++;
    }
    strata_buf_put(b, "\"", 1);
}

void promql_go_quote_rune(strata_buf_t *b, long r)
{
    unsigned char raw[4];
    int w;
    if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
    if (r < 0x80) {
        raw[0] = (unsigned char)r;
        w = 1;
    } else if (r < 0x800) {
        raw[0] = (unsigned char)(0xC0 | r >> 6);
        raw[1] = (unsigned char)(0x80 | (r & 0x3F));
        w = 2;
    } else if (r < 0x10000) {
        raw[0] = (unsigned char)(0xE0 | r >> 12);
        raw[1] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
        raw[2] = (unsigned char)(0x80 | (r & 0x3F));
        w = 3;
    } else {
        raw[0] = (unsigned char)(0xF0 | r >> 18);
        raw[1] = (unsigned char)(0x80 | ((r >> 12) & 0x3F));
        raw[2] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
        raw[3] = (unsigned char)(0x80 | (r & 0x3F));
        w = 4;
    }
    strata_buf_put(b, "'", 1);
    quote_one(b, r, w, raw, '\'');
    strata_buf_put(b, "'", 1);
}

/* ---- the lexer ---- */

#define LEX_EOF (-1L)

static int is_space(long r) { return r == ' ' || r == '\t' || r == '\n' || r == '\r'; }
static int is_alpha(long r) { return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'); }
static int is_digit(long r) { return r >= '0' && r <= '9'; }
static int is_alnum(long r) { return is_alpha(r) || is_digit(r); }

/* The rune at pos and its width (EOF at the end). */
static long peek_w(const promql_lexer_t *lx, int *w)
{
    if (lx->pos >= lx->len) {
        *w = 0;
        return LEX_EOF;
    }
    return decode_rune((const unsigned char *)lx->in + lx->pos, (size_t)(lx->len - lx->pos), w);
}
static long peek(const promql_lexer_t *lx)
{
    int w;
    return peek_w(lx, &w);
}
static long next(promql_lexer_t *lx)
{
    int w;
    long r = peek_w(lx, &w);
    lx->pos += w;
    return r;
}
static int accept(promql_lexer_t *lx, const char *set)
{
    long r = peek(lx);
    if (r > 0 && r < 0x80 && strchr(set, (int)r)) {
        lx->pos++;
        return 1;
    }
    return 0;
}
static void accept_run(promql_lexer_t *lx, const char *set)
{
    while (accept(lx, set)) {}
}

/* An ERROR token at start with a printf message; the lexer stays there. */
__attribute__((format(printf, 4, 5))) static void lex_error(promql_lexer_t *lx, promql_tok_t *tok, int start,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->msg, sizeof lx->msg, fmt, ap);
    va_end(ap);
    tok->type = PROMQL_T_ERROR;
    tok->start = start;
    tok->end = start;
    tok->msg = lx->msg;
    lx->pos = lx->len + 1; /* sticky: every later call answers the error again */
}

/* An error naming a rune as Go's %q (the message is prefix + 'r'). */
static void lex_error_rune(promql_lexer_t *lx, promql_tok_t *tok, int start, const char *prefix, long r)
{
    char tmp[64];
    strata_buf_t b;
    strata_buf_init(&b, NULL, 0);
    promql_go_quote_rune(&b, r);
    snprintf(tmp, sizeof tmp, "%s", b.data ? b.data : "''");
    strata_buf_free(&b);
    lex_error(lx, tok, start, "%s%s", prefix, tmp);
}

/* Prometheus' scanNumber: digits (hex after 0x), fraction, exponent; true
 * when what follows is not alphanumeric. */
static int scan_number(promql_lexer_t *lx)
{
    const char *digits = "0123456789";
    if (accept(lx, "0") && accept(lx, "xX")) digits = "0123456789abcdefABCDEF";
    accept_run(lx, digits);
    if (accept(lx, ".")) accept_run(lx, digits);
    if (accept(lx, "eE")) {
        accept(lx, "+-");
        accept_run(lx, "0123456789");
    }
    return !is_alnum(peek(lx));
}

/* Prometheus' acceptRemainingDuration: a unit, then more number-unit pairs;
 * the exact order of units is checked when the duration is parsed. */
static int accept_remaining_duration(promql_lexer_t *lx)
{
    if (!accept(lx, "smhdwy")) return 0;
    accept(lx, "s");
    while (accept(lx, "0123456789")) {
        accept_run(lx, "0123456789");
        if (!accept(lx, "smhdw")) return 0;
        accept(lx, "s");
    }
    /* Prometheus reads the rune it checks, so a bad one is in the message */
    if (is_alnum(peek(lx))) {
        next(lx);
        return 0;
    }
    return 1;
}

static void emit(promql_lexer_t *lx, promql_tok_t *tok, promql_tok_type_t type, int start)
{
    tok->type = type;
    tok->start = start;
    tok->end = lx->pos;
}

static const struct {
    const char *word;
    promql_tok_type_t type;
    int aggop;
} keywords[] = {
    { "and", PROMQL_T_LAND, 0 },
    { "or", PROMQL_T_LOR, 0 },
    { "unless", PROMQL_T_LUNLESS, 0 },
    { "atan2", PROMQL_T_ATAN2, 0 },
    { "sum", PROMQL_T_AGGR, PROMQL_AGG_SUM },
    { "avg", PROMQL_T_AGGR, PROMQL_AGG_AVG },
    { "count", PROMQL_T_AGGR, PROMQL_AGG_COUNT },
    { "min", PROMQL_T_AGGR, PROMQL_AGG_MIN },
    { "max", PROMQL_T_AGGR, PROMQL_AGG_MAX },
    { "group", PROMQL_T_AGGR, PROMQL_AGG_GROUP },
    { "stddev", PROMQL_T_AGGR, PROMQL_AGG_STDDEV },
    { "stdvar", PROMQL_T_AGGR, PROMQL_AGG_STDVAR },
    { "topk", PROMQL_T_AGGR, PROMQL_AGG_TOPK },
    { "bottomk", PROMQL_T_AGGR, PROMQL_AGG_BOTTOMK },
    { "count_values", PROMQL_T_AGGR, PROMQL_AGG_COUNT_VALUES },
    { "quantile", PROMQL_T_AGGR, PROMQL_AGG_QUANTILE },
    { "limitk", PROMQL_T_AGGR, PROMQL_AGG_LIMITK },
    { "limit_ratio", PROMQL_T_AGGR, PROMQL_AGG_LIMIT_RATIO },
    { "offset", PROMQL_T_OFFSET, 0 },
    { "by", PROMQL_T_BY, 0 },
    { "without", PROMQL_T_WITHOUT, 0 },
    { "on", PROMQL_T_ON, 0 },
    { "ignoring", PROMQL_T_IGNORING, 0 },
    { "group_left", PROMQL_T_GROUP_LEFT, 0 },
    { "group_right", PROMQL_T_GROUP_RIGHT, 0 },
    { "bool", PROMQL_T_BOOL, 0 },
    { "start", PROMQL_T_START, 0 },
    { "end", PROMQL_T_END, 0 },
    { "inf", PROMQL_T_NUMBER, 0 },
    { "nan", PROMQL_T_NUMBER, 0 },
};

static void lex_keyword_or_ident(promql_lexer_t *lx, promql_tok_t *tok, int start)
{
    int colon = 0;
    for (;;) {
        long r = peek(lx);
        if (r == ':') colon = 1;
        if (!is_alnum(r) && r != ':') break;
        lx->pos++;
    }
    int n = lx->pos - start;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if ((int)strlen(keywords[i].word) == n &&
            strncasecmp(keywords[i].word, lx->in + start, (size_t)n) == 0) {
            emit(lx, tok, keywords[i].type, start);
            tok->aggop = keywords[i].aggop;
            return;
        }
    }
    emit(lx, tok, colon ? PROMQL_T_METRIC_IDENT : PROMQL_T_IDENT, start);
}

/* Go's %#U of a rune: U+0071 'q' (the rune as is when printable). */
static void fmt_sharp_u(char *out, size_t cap, long r)
{
    if (r >= 0 && go_isprint(r)) {
        unsigned char raw[4];
        int w = 0;
        long v = r;
        if (v < 0x80) {
            raw[w++] = (unsigned char)v;
        } else if (v < 0x800) {
            raw[w++] = (unsigned char)(0xC0 | v >> 6);
            raw[w++] = (unsigned char)(0x80 | (v & 0x3F));
        } else if (v < 0x10000) {
            raw[w++] = (unsigned char)(0xE0 | v >> 12);
            raw[w++] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
            raw[w++] = (unsigned char)(0x80 | (v & 0x3F));
        } else {
            raw[w++] = (unsigned char)(0xF0 | v >> 18);
            raw[w++] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
            raw[w++] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
            raw[w++] = (unsigned char)(0x80 | (v & 0x3F));
        }
        snprintf(out, cap, "U+%04lX '%.*s'", r, w, (const char *)raw);
    } else {
        snprintf(out, cap, "U+%04lX", r < 0 ? 0xFFFDL : r);
    }
}

/* lexEscape: validates one escape after a backslash (the value is decoded by
 * the parser).  0, or -1 with the error set. */
static int lex_escape(promql_lexer_t *lx, promql_tok_t *tok, int start, long quote)
{
    int n;
    unsigned base;
    unsigned long max;
    long ch = next(lx);
    switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\': return 0;
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        n = 3;
        base = 8;
        max = 255;
        break;
    case 'x':
        ch = next(lx);
        n = 2;
        base = 16;
        max = 255;
        break;
    case 'u':
        ch = next(lx);
        n = 4;
        base = 16;
        max = 0x10FFFF;
        break;
    case 'U':
        ch = next(lx);
        n = 8;
        base = 16;
        max = 0x10FFFF;
        break;
    case LEX_EOF: lex_error(lx, tok, start, "escape sequence not terminated"); return -1;
    default:
        if (ch == quote) return 0;
        {
            char tmp[64];
            fmt_sharp_u(tmp, sizeof tmp, ch);
            lex_error(lx, tok, start, "unknown escape sequence %s", tmp);
        }
        return -1;
    }
    unsigned long x = 0;
    while (n > 0) {
        unsigned d = 99;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        if (d >= base) {
            if (ch == LEX_EOF) {
                lex_error(lx, tok, start, "escape sequence not terminated");
                return -1;
            }
            char tmp[64];
            fmt_sharp_u(tmp, sizeof tmp, ch);
            lex_error(lx, tok, start, "illegal character %s in escape sequence", tmp);
            return -1;
        }
        x = x * base + d;
        n--;
        if (n > 0) ch = next(lx);
    }
    if (x > max || (x >= 0xD800 && x < 0xE000)) {
        lex_error(lx, tok, start, "escape sequence is an invalid Unicode code point");
        return -1;
    }
    return 0;
}

static void lex_string(promql_lexer_t *lx, promql_tok_t *tok, int start, long quote)
{
    for (;;) {
        int w;
        long r = peek_w(lx, &w);
        if (r == 0xFFFD && w == 1) {
            lex_error(lx, tok, start, "invalid UTF-8 rune");
            return;
        }
        lx->pos += w;
        if (r == '\\') {
            if (lex_escape(lx, tok, start, quote) < 0) return;
        } else if (r == LEX_EOF || r == '\n') {
            lex_error(lx, tok, start, "unterminated quoted string");
            return;
        } else if (r == quote) {
            break;
        }
    }
    emit(lx, tok, PROMQL_T_STRING, start);
}

static void lex_raw_string(promql_lexer_t *lx, promql_tok_t *tok, int start)
{
    for (;;) {
        int w;
        long r = peek_w(lx, &w);
        if (r == 0xFFFD && w == 1) {
            lex_error(lx, tok, start, "invalid UTF-8 rune");
            return;
        }
        lx->pos += w;
        if (r == LEX_EOF) {
            lex_error(lx, tok, start, "unterminated raw string");
            return;
        }
        if (r == '`') break;
    }
    emit(lx, tok, PROMQL_T_STRING, start);
}

static void skip_comment(promql_lexer_t *lx)
{
    while (lx->pos < lx->len && lx->in[lx->pos] != '\n') lx->pos++;
}

static void lex_inside_braces(promql_lexer_t *lx, promql_tok_t *tok)
{
    for (;;) {
        int start = lx->pos;
        if (peek(lx) == '#') {
            skip_comment(lx);
            continue;
        }
        long r = next(lx);
        if (r == LEX_EOF) {
            lex_error(lx, tok, start, "unexpected end of input inside braces");
            return;
        }
        if (is_space(r)) continue;
        if (is_alpha(r)) {
            while (is_alnum(peek(lx))) lx->pos++;
            emit(lx, tok, PROMQL_T_IDENT, start);
            return;
        }
        switch (r) {
        case ',': emit(lx, tok, PROMQL_T_COMMA, start); return;
        case '"':
        case '\'': lex_string(lx, tok, start, r); return;
        case '`': lex_raw_string(lx, tok, start); return;
        case '=':
            if (peek(lx) == '~') {
                lx->pos++;
                emit(lx, tok, PROMQL_T_EQL_REGEX, start);
            } else {
                emit(lx, tok, PROMQL_T_EQL, start);
            }
            return;
        case '!': {
            long nr = next(lx);
            if (nr == '~')
                emit(lx, tok, PROMQL_T_NEQ_REGEX, start);
            else if (nr == '=')
                emit(lx, tok, PROMQL_T_NEQ, start);
            else
                lex_error_rune(lx, tok, start, "unexpected character after '!' inside braces: ", nr);
            return;
        }
        case '{': lex_error_rune(lx, tok, start, "unexpected left brace ", r); return;
        case '}':
            lx->brace_open = 0;
            emit(lx, tok, PROMQL_T_RBRACE, start);
            return;
        default: lex_error_rune(lx, tok, start, "unexpected character inside braces: ", r); return;
        }
    }
}

/* lexDuration: the token right after '[' must be a duration. */
static void lex_duration(promql_lexer_t *lx, promql_tok_t *tok)
{
    int start = lx->pos;
    if (scan_number(lx)) {
        lex_error(lx, tok, start, "missing unit character in duration");
        return;
    }
    if (!accept_remaining_duration(lx)) {
        char tmp[160];
        strata_buf_t b;
        strata_buf_init(&b, NULL, 0);
        promql_go_quote(&b, lx->in + start, (size_t)(lx->pos - start), 0);
        snprintf(tmp, sizeof tmp, "%s", b.data ? b.data : "\"\"");
        strata_buf_free(&b);
        lex_error(lx, tok, start, "bad duration syntax: %s", tmp);
        return;
    }
    emit(lx, tok, PROMQL_T_DURATION, start);
}

void promql_lex_next(promql_lexer_t *lx, promql_tok_t *tok)
{
    memset(tok, 0, sizeof *tok);
    if (lx->pos > lx->len) { /* after an error */
        tok->type = PROMQL_T_ERROR;
        tok->msg = lx->msg;
        return;
    }
    if (lx->brace_open) {
        lex_inside_braces(lx, tok);
        return;
    }
    if (lx->want_duration) {
        while (is_space(peek(lx))) lx->pos++;
        lx->want_duration = 0;
        lex_duration(lx, tok);
        return;
    }
    for (;;) {
        int start = lx->pos;
        long r = peek(lx);
        if (r == '#') {
            skip_comment(lx);
            continue;
        }
        next(lx);
        if (r == LEX_EOF) {
            if (lx->paren_depth != 0)
                lex_error(lx, tok, start, "unclosed left parenthesis");
            else if (lx->bracket_open)
                lex_error(lx, tok, start, "unclosed left bracket");
            else
                emit(lx, tok, PROMQL_T_EOF, start);
            if (tok->type == PROMQL_T_EOF) lx->pos = lx->len; /* EOF stays EOF */
            return;
        }
        if (is_space(r)) continue;
        switch (r) {
        case ',': emit(lx, tok, PROMQL_T_COMMA, start); return;
        case '*': emit(lx, tok, PROMQL_T_MUL, start); return;
        case '/': emit(lx, tok, PROMQL_T_DIV, start); return;
        case '%': emit(lx, tok, PROMQL_T_MOD, start); return;
        case '+': emit(lx, tok, PROMQL_T_ADD, start); return;
        case '-': emit(lx, tok, PROMQL_T_SUB, start); return;
        case '^': emit(lx, tok, PROMQL_T_POW, start); return;
        case '@': emit(lx, tok, PROMQL_T_AT, start); return;
        case '=': {
            long t = peek(lx);
            if (t == '=') {
                lx->pos++;
                emit(lx, tok, PROMQL_T_EQLC, start);
            } else if (t == '~') {
                lex_error_rune(lx, tok, start, "unexpected character after '=': ", t);
            } else {
                emit(lx, tok, PROMQL_T_EQL, start);
            }
            return;
        }
        case '!': {
            long t = next(lx);
            if (t == '=')
                emit(lx, tok, PROMQL_T_NEQ, start);
            else
                lex_error_rune(lx, tok, start, "unexpected character after '!': ", t == LEX_EOF ? 0xFFFD : t);
            return;
        }
        case '<':
            if (accept(lx, "="))
                emit(lx, tok, PROMQL_T_LTE, start);
            else
                emit(lx, tok, PROMQL_T_LSS, start);
            return;
        case '>':
            if (accept(lx, "="))
                emit(lx, tok, PROMQL_T_GTE, start);
            else
                emit(lx, tok, PROMQL_T_GTR, start);
            return;
        case '"':
        case '\'': lex_string(lx, tok, start, r); return;
        case '`': lex_raw_string(lx, tok, start); return;
        case '(':
            lx->paren_depth++;
            emit(lx, tok, PROMQL_T_LPAREN, start);
            return;
        case ')':
            emit(lx, tok, PROMQL_T_RPAREN, start);
            if (--lx->paren_depth < 0) lex_error_rune(lx, tok, lx->pos, "unexpected right parenthesis ", r);
            return;
        case '{':
            lx->brace_open = 1;
            emit(lx, tok, PROMQL_T_LBRACE, start);
            return;
        case '}': lex_error_rune(lx, tok, start, "unexpected character: ", r); return;
        case '[':
            if (lx->bracket_open) {
                lex_error_rune(lx, tok, start, "unexpected left bracket ", r);
                return;
            }
            lx->got_colon = 0;
            lx->bracket_open = 1;
            lx->want_duration = 1;
            emit(lx, tok, PROMQL_T_LBRACKET, start);
            return;
        case ']':
            if (!lx->bracket_open) {
                lex_error_rune(lx, tok, start, "unexpected right bracket ", r);
                return;
            }
            lx->bracket_open = 0;
            emit(lx, tok, PROMQL_T_RBRACKET, start);
            return;
        }
        if (is_digit(r) || (r == '.' && is_digit(peek(lx)))) {
            lx->pos = start;
            if (scan_number(lx)) {
                emit(lx, tok, PROMQL_T_NUMBER, start);
                return;
            }
            if (accept_remaining_duration(lx)) {
                emit(lx, tok, PROMQL_T_DURATION, start);
                return;
            }
            char tmp[160];
            strata_buf_t b;
            strata_buf_init(&b, NULL, 0);
            promql_go_quote(&b, lx->in + start, (size_t)(lx->pos - start), 0);
            snprintf(tmp, sizeof tmp, "%s", b.data ? b.data : "\"\"");
            strata_buf_free(&b);
            lex_error(lx, tok, start, "bad number or duration syntax: %s", tmp);
            return;
        }
        if (is_alpha(r) || r == ':') {
            /* Inside brackets a letter or ':' is the subquery's colon
             * (Prometheus lexes it so, whence "unexpected colon 'x'"). */
            if (lx->bracket_open) {
                if (lx->got_colon) {
                    lex_error_rune(lx, tok, start, "unexpected colon ", r);
                    return;
                }
                lx->got_colon = 1;
                emit(lx, tok, PROMQL_T_COLON, start);
                return;
            }
            lx->pos = start;
            lex_keyword_or_ident(lx, tok, start);
            return;
        }
        lex_error_rune(lx, tok, start, "unexpected character: ", r);
        return;
    }
}
