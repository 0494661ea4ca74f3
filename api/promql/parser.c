/*
 * parser.c: promql_parse(), a recursive-descent parser with precedence
 * climbing for binary operators, over the tokens of lexer.c, followed by
 * the type check Prometheus runs after parsing (its checkAST).  Messages and
 * positions are Prometheus 2.42's (docs/promql.md, "Parser").
 *
 * Errors come in two kinds, as in Prometheus' yacc parser: a syntax error
 * stops the parse at once (longjmp back to promql_parse); a semantic one
 * found while parsing (unknown function, offset twice, zero duration...) is
 * recorded and parsing goes on, so that a later syntax error does not hide
 * it.  Only the first error is reported, and the type check runs only when
 * the parse gave none.
 */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lexer.h"
#include "promql_internal.h"
#include "strata_buf.h"
#include "tsdb.h"

typedef struct parser {
    promql_lexer_t lx;
    promql_tok_t tok;  /* the current token */
    promql_tok_t tok2; /* the one after, when have2 */
    int have2;
    int agg_depth; /* inside an aggregation's ( ): Prometheus adds " in aggregation" */
    int nest;      /* parse_expr recursion */
    int ret_depth; /* depth of the tree the last parse function returned */
    int last_end;  /* end of the last consumed token */
    const char *in;
    int len;
    strata_arena_t *arena;
    jmp_buf fail;
    int rc; /* STRATA_EINVAL or STRATA_ENOMEM once failed */
    int err_set;
    int err_pos;
    char err_text[400];
} parser_t;

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

/* How deep a query may nest.  The parser, the type check, the printer and
 * the evaluator all recurse over the tree, so a query of a million '(' or
 * '1+1+...' must be refused before it runs any of them out of stack. */
#define PROMQL_MAX_DEPTH 1000

/* ---- errors ---- */

static void set_error(parser_t *p, int pos, const char *text)
{
    if (p->err_set) return;
    p->err_set = 1;
    p->err_pos = pos;
    snprintf(p->err_text, sizeof p->err_text, "%s", text);
}

/* A semantic error: recorded (the first one wins), parsing goes on. */
__attribute__((format(printf, 3, 4))) static void soft_error(parser_t *p, int pos, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    set_error(p, pos, text);
}

/* A syntax error: recorded, and the parse ends. */
__attribute__((noreturn, format(printf, 3, 4))) static void hard_error(parser_t *p, int pos, const char *fmt,
                                                                       ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    set_error(p, pos, text);
    p->rc = STRATA_EINVAL;
    longjmp(p->fail, 1);
}

__attribute__((noreturn)) static void too_deep(parser_t *p)
{
    hard_error(p, p->tok.start, "expression nested too deeply (more than %d levels)", PROMQL_MAX_DEPTH);
}

__attribute__((noreturn)) static void no_memory(parser_t *p)
{
    p->rc = STRATA_ENOMEM;
    longjmp(p->fail, 1);
}

static void *alloc(parser_t *p, size_t n)
{
    void *v = strata_arena_calloc(p->arena, 1, n);
    if (!v) no_memory(p);
    return v;
}

/* The last tree returned is d deep. */
static void set_depth(parser_t *p, int d)
{
    p->ret_depth = d;
    if (d > PROMQL_MAX_DEPTH) too_deep(p);
}

static char *dup_text(parser_t *p, const char *s, size_t n)
{
    char *d = strata_arena_strndup(p->arena, s, n);
    if (!d) no_memory(p);
    return d;
}

/* ---- tokens ---- */

static void fetch(parser_t *p, promql_tok_t *t) { promql_lex_next(&p->lx, t); }

static promql_tok_t *peek2(parser_t *p)
{
    if (!p->have2) {
        fetch(p, &p->tok2);
        p->have2 = 1;
    }
    return &p->tok2;
}

static void advance(parser_t *p)
{
    p->last_end = p->tok.end;
    if (p->have2) {
        p->tok = p->tok2;
        p->have2 = 0;
    } else {
        fetch(p, &p->tok);
    }
}

/* Prometheus' Item.desc(): how a message names a token. */
static void tok_desc(parser_t *p, const promql_tok_t *t, strata_buf_t *b)
{
    const char *text = p->in + t->start;
    size_t n = (size_t)(t->end - t->start);
    switch (t->type) {
    case PROMQL_T_EOF: strata_buf_puts(b, "end of input"); return;
    case PROMQL_T_IDENT:
        strata_buf_puts(b, "identifier ");
        promql_go_quote(b, text, n, 0);
        return;
    case PROMQL_T_METRIC_IDENT:
        strata_buf_puts(b, "metric identifier ");
        promql_go_quote(b, text, n, 0);
        return;
    case PROMQL_T_NUMBER:
    case PROMQL_T_STRING:
    case PROMQL_T_DURATION:
        strata_buf_puts(b, t->type == PROMQL_T_NUMBER   ? "number "
                           : t->type == PROMQL_T_STRING ? "string "
                                                        : "duration ");
        promql_go_quote(b, text, n, n > 10 ? 10 : 0);
        if (n > 10) strata_buf_puts(b, "...");
        return;
    case PROMQL_T_AT: strata_buf_puts(b, "\"<Item 57385>\" <op:@>"); return;
    case PROMQL_T_AGGR: strata_buf_printf(b, "<aggr:%.*s>", (int)n, text); return;
    case PROMQL_T_BOOL:
    case PROMQL_T_BY:
    case PROMQL_T_WITHOUT:
    case PROMQL_T_ON:
    case PROMQL_T_IGNORING:
    case PROMQL_T_GROUP_LEFT:
    case PROMQL_T_GROUP_RIGHT:
    case PROMQL_T_OFFSET: strata_buf_printf(b, "<%.*s>", (int)n, text); return;
    case PROMQL_T_LPAREN:
    case PROMQL_T_RPAREN:
    case PROMQL_T_LBRACE:
    case PROMQL_T_RBRACE:
    case PROMQL_T_LBRACKET:
    case PROMQL_T_RBRACKET:
    case PROMQL_T_COMMA:
    case PROMQL_T_EQL:
    case PROMQL_T_START: /* not keywords to Prometheus' Item.String() */
    case PROMQL_T_END:
    case PROMQL_T_COLON:
        /* the colon of a subquery may be a letter (lexer.c); it prints as
         * Prometheus' token text does */
        promql_go_quote(b, text, n, 0);
        return;
    case PROMQL_T_ERROR: return;
    default: strata_buf_printf(b, "<op:%.*s>", (int)n, text); return;
    }
}

/* The current token was not expected: a lexer error is reported as is,
 * anything else as "unexpected <token>[ in ctx][, expected exp]". */
__attribute__((noreturn)) static void unexpected(parser_t *p, const char *ctx, const char *exp)
{
    const promql_tok_t *t = &p->tok;
    if (t->type == PROMQL_T_ERROR) hard_error(p, t->start, "%s", t->msg);
    strata_buf_t b;
    strata_buf_init(&b, p->arena, 64);
    strata_buf_puts(&b, "unexpected ");
    tok_desc(p, t, &b);
    if ((!ctx || !*ctx) && p->agg_depth > 0) ctx = "aggregation";
    if (ctx && *ctx) {
        strata_buf_puts(&b, " in ");
        strata_buf_puts(&b, ctx);
    }
    if (exp && *exp) {
        strata_buf_puts(&b, ", expected ");
        strata_buf_puts(&b, exp);
    }
    if (b.failed) no_memory(p);
    hard_error(p, t->start, "%s", b.data);
}

/* ---- nodes ---- */

static promql_node_t *new_node(parser_t *p, promql_node_kind_t kind, int start, int end)
{
    promql_node_t *n = alloc(p, sizeof *n);
    n->kind = kind;
    n->pos_start = start;
    n->pos_end = end;
    return n;
}

/* A growable array in the arena. */
static void *grow(parser_t *p, void *arr, size_t n, size_t elem)
{
    /* capacities are 4, 8, 16...: full when n is 0 or a power of two >= 4 */
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0)) return arr;
    size_t cap = n == 0 ? 4 : n * 2;
    void *na = alloc(p, cap * elem);
    if (n) memcpy(na, arr, n * elem);
    return na;
}

/* ---- literals ---- */

/* Prometheus' parseNumber: strconv.ParseInt(s, 0, 64) (so 0x1f is hex and
 * 017 octal), else strconv.ParseFloat (Inf, NaN, decimal, exponent). */
static double parse_number(parser_t *p, const promql_tok_t *t)
{
    const char *s = p->in + t->start;
    size_t n = (size_t)(t->end - t->start);
    char *c = dup_text(p, s, n);
    if (!strcasecmp(c, "inf")) return INFINITY;
    if (!strcasecmp(c, "nan")) return NAN;
    if (n > 2 && c[0] == '0' && (c[1] == 'x' || c[1] == 'X')) {
        errno = 0;
        char *e;
        unsigned long long v = strtoull(c + 2, &e, 16);
        if (*e == '\0' && errno == 0 && v <= 0x7fffffffffffffffULL && c[2] != '-' && c[2] != '+')
            return (double)v;
    } else if (n > 1 && c[0] == '0' && strspn(c, "01234567") == n) {
        errno = 0;
        unsigned long long v = strtoull(c, NULL, 8);
        if (errno == 0 && v <= 0x7fffffffffffffffULL) return (double)v;
    }
    if (strchr(c, 'x') == NULL && strchr(c, 'X') == NULL) {
        errno = 0;
        char *e;
        double v = strtod(c, &e);
        if (*e == '\0' && e != c) {
            if (isinf(v)) {
                strata_buf_t b;
                strata_buf_init(&b, p->arena, 32);
                promql_go_quote(&b, c, n, 0);
                soft_error(p, t->start,
                           "error parsing number: strconv.ParseFloat: parsing %s: value out of range",
                           b.data ? b.data : "");
            }
            return v;
        }
    }
    strata_buf_t b;
    strata_buf_init(&b, p->arena, 32);
    promql_go_quote(&b, c, n, 0);
    soft_error(p, t->start, "error parsing number: strconv.ParseFloat: parsing %s: invalid syntax",
               b.data ? b.data : "");
    return 0;
}

static void put_utf8(char *o, size_t *k, unsigned long r)
{
    if (r < 0x80) {
        o[(*k)++] = (char)r;
    } else if (r < 0x800) {
        o[(*k)++] = (char)(0xC0 | r >> 6);
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    } else if (r < 0x10000) {
        o[(*k)++] = (char)(0xE0 | r >> 12);
        o[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    } else {
        o[(*k)++] = (char)(0xF0 | r >> 18);
        o[(*k)++] = (char)(0x80 | ((r >> 12) & 0x3F));
        o[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

/* The value of a string token (the lexer has validated its escapes). */
static const char *unquote(parser_t *p, const promql_tok_t *t)
{
    const char *s = p->in + t->start + 1;
    size_t n = (size_t)(t->end - t->start - 2);
    if (p->in[t->start] == '`') return dup_text(p, s, n);
    char *o = alloc(p, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        char c = s[++i];
        unsigned long x = 0;
        switch (c) {
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'v': o[k++] = '\v'; break;
        case 'x':
            x = (unsigned long)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            o[k++] = (char)x;
            break;
        case 'u':
        case 'U': {
            int nd = c == 'u' ? 4 : 8;
            for (int d = 1; d <= nd; d++) x = x * 16 + (unsigned long)hexval(s[i + d]);
            i += (size_t)nd;
            put_utf8(o, &k, x);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                x = (unsigned long)((c - '0') * 64 + (s[i + 1] - '0') * 8 + (s[i + 2] - '0'));
                i += 2;
                o[k++] = (char)x;
            } else {
                o[k++] = c; /* \\ and the quote */
            }
        }
    }
    o[k] = '\0';
    return o;
}

/* Prometheus' model.ParseDuration: [Ny][Nw][Nd][Nh][Nm][Ns][Nms], units in
 * that order, at least one.  It counts in nanoseconds, so anything past
 * about 292 years is out of range (strata_duration_parse counts in ms and
 * would take it).  0, -1 for bad syntax, -2 out of range. */
static int parse_prom_duration(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        { "y", 365LL * 86400000 },
        { "w", 7LL * 86400000 },
        { "d", 86400000 },
        { "h", 3600000 },
        { "m", 60000 },
        { "s", 1000 },
        { "ms", 1 },
    };
    const int64_t max_ns = INT64_MAX;
    int64_t total_ns = 0;
    int range = 0, any = 0;
    size_t u = 0;
    while (*s) {
        const char *d = s;
        while (*s >= '0' && *s <= '9') s++;
        if (s == d) return -1;
        size_t k = u;
        while (k < sizeof units / sizeof units[0]) {
            size_t ul = strlen(units[k].unit);
            /* "m" must not take the "m" of "ms" */
            if (!strncmp(s, units[k].unit, ul) && !(ul == 1 && s[0] == 'm' && s[1] == 's')) break;
            k++;
        }
        if (k == sizeof units / sizeof units[0]) return -1;
        int64_t per = units[k].ms * 1000000; /* ns per unit */
        int64_t n = 0;
        for (const char *c = d; c < s; c++) {
            if (n > (max_ns - (*c - '0')) / 10) {
                n = max_ns; /* Go's Atoi saturates, then the check below fires */
                break;
            }
            n = n * 10 + (*c - '0');
        }
        if (n > max_ns / per || total_ns > max_ns - n * per)
            range = 1;
        else
            total_ns += n * per;
        s += strlen(units[k].unit);
        u = k + 1;
        any = 1;
    }
    if (!any) return -1;
    if (range) return -2;
    *out_ms = total_ns / 1000000;
    return 0;
}

/* A duration token in ms; a bad or zero one is a semantic error. */
static int64_t parse_duration_tok(parser_t *p, const promql_tok_t *t)
{
    char *c = dup_text(p, p->in + t->start, (size_t)(t->end - t->start));
    int64_t ms = 0;
    int rc = parse_prom_duration(c, &ms);
    if (rc == -2) {
        soft_error(p, t->start, "duration out of range");
        return 0;
    }
    if (rc != 0) {
        strata_buf_t b;
        strata_buf_init(&b, p->arena, 32);
        promql_go_quote(&b, c, strlen(c), 0);
        soft_error(p, t->start, "not a valid duration string: %s", b.data ? b.data : "");
        return 0;
    }
    if (ms == 0) soft_error(p, t->start, "duration must be greater than 0");
    return ms;
}

/* ---- expressions ---- */

static promql_node_t *parse_expr(parser_t *p, int min_prec);

static int binop_of(promql_tok_type_t t, promql_binop_t *op, int *prec)
{
    switch (t) {
    case PROMQL_T_LOR: *op = PROMQL_OP_OR, *prec = PREC_OR; return 1;
    case PROMQL_T_LAND: *op = PROMQL_OP_AND, *prec = PREC_AND; return 1;
    case PROMQL_T_LUNLESS: *op = PROMQL_OP_UNLESS, *prec = PREC_AND; return 1;
    case PROMQL_T_EQLC: *op = PROMQL_OP_EQL, *prec = PREC_CMP; return 1;
    case PROMQL_T_NEQ: *op = PROMQL_OP_NEQ, *prec = PREC_CMP; return 1;
    case PROMQL_T_GTR: *op = PROMQL_OP_GTR, *prec = PREC_CMP; return 1;
    case PROMQL_T_LSS: *op = PROMQL_OP_LSS, *prec = PREC_CMP; return 1;
    case PROMQL_T_GTE: *op = PROMQL_OP_GTE, *prec = PREC_CMP; return 1;
    case PROMQL_T_LTE: *op = PROMQL_OP_LTE, *prec = PREC_CMP; return 1;
    case PROMQL_T_ADD: *op = PROMQL_OP_ADD, *prec = PREC_ADD; return 1;
    case PROMQL_T_SUB: *op = PROMQL_OP_SUB, *prec = PREC_ADD; return 1;
    case PROMQL_T_MUL: *op = PROMQL_OP_MUL, *prec = PREC_MUL; return 1;
    case PROMQL_T_DIV: *op = PROMQL_OP_DIV, *prec = PREC_MUL; return 1;
    case PROMQL_T_MOD: *op = PROMQL_OP_MOD, *prec = PREC_MUL; return 1;
    case PROMQL_T_ATAN2: *op = PROMQL_OP_ATAN2, *prec = PREC_MUL; return 1;
    case PROMQL_T_POW: *op = PROMQL_OP_POW, *prec = PREC_POW; return 1;
    default: return 0;
    }
}

/* Tokens Prometheus' grammar takes as a label name (maybe_label). */
static int label_token(promql_tok_type_t t)
{
    switch (t) {
    case PROMQL_T_IDENT:
    case PROMQL_T_METRIC_IDENT:
    case PROMQL_T_AGGR:
    case PROMQL_T_BOOL:
    case PROMQL_T_BY: /* but not WITHOUT, which Prometheus' maybe_label lacks */
    case PROMQL_T_ON:
    case PROMQL_T_IGNORING:
    case PROMQL_T_GROUP_LEFT:
    case PROMQL_T_GROUP_RIGHT:
    case PROMQL_T_OFFSET:
    case PROMQL_T_START:
    case PROMQL_T_END:
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_ATAN2: return 1;
    default: return 0;
    }
}

/* Can the token begin an expression? */
static int starts_expr(promql_tok_type_t t)
{
    switch (t) {
    case PROMQL_T_NUMBER:
    case PROMQL_T_STRING:
    case PROMQL_T_LPAREN:
    case PROMQL_T_LBRACE:
    case PROMQL_T_IDENT:
    case PROMQL_T_METRIC_IDENT:
    case PROMQL_T_AGGR:
    case PROMQL_T_ADD:
    case PROMQL_T_SUB:
    case PROMQL_T_BY:
    case PROMQL_T_WITHOUT:
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_OFFSET:
    case PROMQL_T_START:
    case PROMQL_T_END: return 1;
    default: return 0;
    }
}

/* ( label, ... ) of by/without, on/ignoring, group_left/right. */
static void parse_grouping(parser_t *p, promql_labels_t *out)
{
    if (p->tok.type != PROMQL_T_LPAREN) unexpected(p, "grouping opts", "\"(\"");
    advance(p);
    out->names = NULL;
    out->n = 0;
    for (;;) {
        if (p->tok.type == PROMQL_T_RPAREN) break;
        if (!label_token(p->tok.type) || p->tok.type == PROMQL_T_METRIC_IDENT)
            unexpected(p, "grouping opts", "label");
        out->names = grow(p, out->names, out->n, sizeof *out->names);
        out->names[out->n++] = dup_text(p, p->in + p->tok.start, (size_t)(p->tok.end - p->tok.start));
        advance(p);
        if (p->tok.type == PROMQL_T_COMMA) {
            advance(p);
            continue;
        }
        if (p->tok.type == PROMQL_T_RPAREN) break;
        unexpected(p, "grouping opts", "\",\" or \")\"");
    }
    advance(p);
}

/* ( args ) of a call or an aggregation; the current token is the '('. */
static promql_node_t **parse_args(parser_t *p, size_t *nargs)
{
    promql_node_t **args = NULL;
    size_t n = 0;
    int maxd = 0;
    advance(p);
    if (p->tok.type == PROMQL_T_RPAREN) {
        advance(p);
        *nargs = 0;
        p->ret_depth = 0;
        return NULL;
    }
    for (;;) {
        promql_node_t *a = parse_expr(p, 0);
        if (p->ret_depth > maxd) maxd = p->ret_depth;
        args = grow(p, args, n, sizeof *args);
        args[n++] = a;
        int more = 0;
        while (p->tok.type == PROMQL_T_COMMA) {
            int comma = p->tok.start;
            advance(p);
            if (starts_expr(p->tok.type) || p->tok.type == PROMQL_T_ERROR) {
                more = 1;
                break;
            }
            /* a comma with no argument after it: Prometheus' grammar takes
             * the list as complete there and goes on */
            soft_error(p, comma, "trailing commas not allowed in function call args");
        }
        if (more) continue;
        if (p->tok.type == PROMQL_T_RPAREN) break;
        unexpected(p, NULL, NULL);
    }
    advance(p);
    *nargs = n;
    p->ret_depth = maxd; /* the caller adds its own level */
    return args;
}

static promql_matcher_t *add_matcher(parser_t *p, promql_node_t *n, const char *name, const char *value,
                                     int type)
{
    n->u.sel.matchers = grow(p, n->u.sel.matchers, n->u.sel.nmatchers, sizeof *n->u.sel.matchers);
    promql_matcher_t *m = &n->u.sel.matchers[n->u.sel.nmatchers++];
    m->name = name;
    m->value = value;
    m->type = type;
    return m;
}

/* [name] [{ matchers }]: the current token is the name or the '{'. */
static promql_node_t *parse_selector(parser_t *p, int has_name)
{
    promql_node_t *n = new_node(p, PROMQL_VECTOR_SEL, p->tok.start, p->tok.end);
    if (has_name) {
        n->u.sel.name = dup_text(p, p->in + p->tok.start, (size_t)(p->tok.end - p->tok.start));
        advance(p);
    }
    if (p->tok.type == PROMQL_T_LBRACE) {
        advance(p);
        for (;;) {
            if (p->tok.type == PROMQL_T_RBRACE) break;
            if (p->tok.type != PROMQL_T_IDENT) unexpected(p, "label matching", "identifier or \"}\"");
            const char *lname = dup_text(p, p->in + p->tok.start, (size_t)(p->tok.end - p->tok.start));
            advance(p);
            int type;
            switch (p->tok.type) {
            case PROMQL_T_EQL: type = TSDB_MATCH_EQ; break;
            case PROMQL_T_NEQ: type = TSDB_MATCH_NEQ; break;
            case PROMQL_T_EQL_REGEX: type = TSDB_MATCH_RE; break;
            case PROMQL_T_NEQ_REGEX: type = TSDB_MATCH_NRE; break;
            default: unexpected(p, "label matching", "label matching operator");
            }
            advance(p);
            if (p->tok.type != PROMQL_T_STRING) unexpected(p, "label matching", "string");
            add_matcher(p, n, lname, unquote(p, &p->tok), type);
            advance(p);
            if (p->tok.type == PROMQL_T_COMMA) {
                advance(p);
                continue;
            }
            if (p->tok.type == PROMQL_T_RBRACE) break;
            unexpected(p, "label matching", "\",\" or \"}\"");
        }
        n->pos_end = p->tok.end;
        advance(p);
    }
    /* The name written before {} is one more matcher, the last one, as
     * Prometheus' assembleVectorSelector appends it. */
    if (n->u.sel.name) add_matcher(p, n, "__name__", n->u.sel.name, TSDB_MATCH_EQ);
    n->type = PROMQL_TYPE_VECTOR;
    set_depth(p, 1);
    return n;
}

static promql_node_t *parse_call(parser_t *p)
{
    promql_tok_t name = p->tok;
    promql_node_t *n = new_node(p, PROMQL_CALL, name.start, name.end);
    n->u.call.func = promql_function_lookup(p->in + name.start, (size_t)(name.end - name.start));
    advance(p);
    n->u.call.args = parse_args(p, &n->u.call.nargs);
    set_depth(p, p->ret_depth + 1);
    n->pos_end = p->last_end;
    if (!n->u.call.func) {
        strata_buf_t b;
        strata_buf_init(&b, p->arena, 32);
        promql_go_quote(&b, p->in + name.start, (size_t)(name.end - name.start), 0);
        soft_error(p, name.start, "unknown function with name %s", b.data ? b.data : "");
    } else {
        n->type = n->u.call.func->return_type;
    }
    return n;
}

static int agg_has_param(promql_aggop_t op)
{
    return op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_QUANTILE ||
           op == PROMQL_AGG_COUNT_VALUES || op == PROMQL_AGG_LIMITK || op == PROMQL_AGG_LIMIT_RATIO;
}

static promql_node_t *parse_aggregate(parser_t *p)
{
    promql_node_t *n = new_node(p, PROMQL_AGGREGATE, p->tok.start, p->tok.end);
    n->u.agg.op = (promql_aggop_t)p->tok.aggop;
    n->type = PROMQL_TYPE_VECTOR;
    advance(p);
    int modifier = 0;
    if (p->tok.type == PROMQL_T_BY || p->tok.type == PROMQL_T_WITHOUT) {
        n->u.agg.without = p->tok.type == PROMQL_T_WITHOUT;
        advance(p);
        parse_grouping(p, &n->u.agg.grouping);
        modifier = 1;
    }
    if (p->tok.type != PROMQL_T_LPAREN) unexpected(p, "aggregation", NULL);
    size_t nargs;
    p->agg_depth++;
    promql_node_t **args = parse_args(p, &nargs);
    p->agg_depth--;
    int depth = p->ret_depth + 1;
    if (!modifier && (p->tok.type == PROMQL_T_BY || p->tok.type == PROMQL_T_WITHOUT)) {
        n->u.agg.without = p->tok.type == PROMQL_T_WITHOUT;
        advance(p);
        parse_grouping(p, &n->u.agg.grouping);
    }
    n->pos_end = p->last_end;
    /* Prometheus checks the arguments when it reduces the rule, after
     * reading the token that follows: a lexer error there comes first */
    if (p->tok.type == PROMQL_T_ERROR) unexpected(p, NULL, NULL);
    set_depth(p, depth);
    if (nargs == 0) {
        soft_error(p, n->pos_start, "no arguments for aggregate expression provided");
        return n;
    }
    size_t want = agg_has_param(n->u.agg.op) ? 2 : 1;
    if (nargs != want) {
        soft_error(p, n->pos_start,
                   "wrong number of arguments for aggregate expression provided, expected %zu, got %zu", want,
                   nargs);
        return n;
    }
    if (want == 2) n->u.agg.param = args[0];
    n->u.agg.expr = args[want - 1];
    return n;
}

static promql_node_t *parse_primary(parser_t *p)
{
    promql_tok_t t = p->tok;
    switch (t.type) {
    case PROMQL_T_NUMBER: {
        promql_node_t *n = new_node(p, PROMQL_NUMBER, t.start, t.end);
        n->u.number = parse_number(p, &t);
        n->type = PROMQL_TYPE_SCALAR;
        advance(p);
        set_depth(p, 1);
        return n;
    }
    case PROMQL_T_STRING: {
        promql_node_t *n = new_node(p, PROMQL_STRING_LIT, t.start, t.end);
        n->u.string = unquote(p, &t);
        n->type = PROMQL_TYPE_STRING;
        advance(p);
        set_depth(p, 1);
        return n;
    }
    case PROMQL_T_LPAREN: {
        advance(p);
        if (p->tok.type == PROMQL_T_RPAREN) unexpected(p, NULL, NULL);
        promql_node_t *e = parse_expr(p, 0);
        if (p->tok.type != PROMQL_T_RPAREN) unexpected(p, NULL, NULL);
        promql_node_t *n = new_node(p, PROMQL_PAREN, t.start, p->tok.end);
        advance(p);
        n->u.unary.expr = e;
        n->type = e->type;
        set_depth(p, p->ret_depth + 1);
        return n;
    }
    case PROMQL_T_LBRACE: return parse_selector(p, 0);
    case PROMQL_T_IDENT:
        if (peek2(p)->type == PROMQL_T_LPAREN) return parse_call(p);
        return parse_selector(p, 1);
    case PROMQL_T_AGGR: {
        promql_tok_type_t n2 = peek2(p)->type;
        if (n2 == PROMQL_T_LPAREN || n2 == PROMQL_T_BY || n2 == PROMQL_T_WITHOUT) return parse_aggregate(p);
        return parse_selector(p, 1);
    }
    /* Prometheus' grammar takes these keywords as metric names too. */
    case PROMQL_T_METRIC_IDENT:
    case PROMQL_T_BY:
    case PROMQL_T_WITHOUT:
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_OFFSET:
    case PROMQL_T_START:
    case PROMQL_T_END: return parse_selector(p, 1);
    default: unexpected(p, NULL, NULL);
    }
}

/* The offset and @ slots of e, or NULL with the error Prometheus gives. */
static promql_node_t *modifier_target(parser_t *p, promql_node_t *e, const char *what)
{
    switch (e->kind) {
    case PROMQL_VECTOR_SEL:
    case PROMQL_SUBQUERY: return e;
    case PROMQL_MATRIX_SEL:
        if (e->u.matrix.vector->kind != PROMQL_VECTOR_SEL) {
            soft_error(p, e->pos_start, "ranges only allowed for vector selectors");
            return NULL;
        }
        return e->u.matrix.vector;
    default:
        soft_error(p, e->pos_start,
                   "%s modifier must be preceded by an instant vector selector or range vector selector or a "
                   "subquery",
                   what);
        return NULL;
    }
}

static void parse_offset(parser_t *p, promql_node_t *e)
{
    advance(p);
    int neg = 0;
    if (p->tok.type == PROMQL_T_SUB) {
        neg = 1;
        advance(p);
    }
    if (p->tok.type != PROMQL_T_DURATION) unexpected(p, "offset", "duration");
    int64_t d = parse_duration_tok(p, &p->tok);
    advance(p);
    if (neg) d = -d;
    promql_node_t *t = modifier_target(p, e, "offset");
    if (!t) return;
    int64_t *slot = t->kind == PROMQL_SUBQUERY ? &t->u.subquery.offset_ms : &t->u.sel.offset_ms;
    if (*slot != 0)
        soft_error(p, e->pos_start, "offset may not be set multiple times");
    else
        *slot = d;
    e->pos_end = p->last_end;
}

static void parse_at(parser_t *p, promql_node_t *e)
{
    advance(p);
    promql_at_t at = PROMQL_AT_TIME;
    double ts = 0;
    if (p->tok.type == PROMQL_T_START || p->tok.type == PROMQL_T_END) {
        at = p->tok.type == PROMQL_T_START ? PROMQL_AT_START : PROMQL_AT_END;
        advance(p);
        if (p->tok.type != PROMQL_T_LPAREN) unexpected(p, "@", "timestamp");
        advance(p);
        if (p->tok.type != PROMQL_T_RPAREN) unexpected(p, "@", "timestamp");
        advance(p);
    } else {
        int neg = 0;
        if (p->tok.type == PROMQL_T_ADD || p->tok.type == PROMQL_T_SUB) {
            neg = p->tok.type == PROMQL_T_SUB;
            advance(p);
        }
        if (p->tok.type != PROMQL_T_NUMBER) unexpected(p, "@", "timestamp");
        ts = parse_number(p, &p->tok);
        if (neg) ts = -ts;
        advance(p);
        if (isinf(ts) || isnan(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0) {
            if (isnan(ts))
                soft_error(p, e->pos_start, "timestamp out of bounds for @ modifier: NaN");
            else if (isinf(ts))
                soft_error(p, e->pos_start, "timestamp out of bounds for @ modifier: %sInf",
                           ts > 0 ? "+" : "-");
            else
                soft_error(p, e->pos_start, "timestamp out of bounds for @ modifier: %f", ts);
        }
    }
    promql_node_t *t = modifier_target(p, e, "@");
    if (!t) return;
    promql_at_t *slot = t->kind == PROMQL_SUBQUERY ? &t->u.subquery.at : &t->u.sel.at;
    int64_t *ms = t->kind == PROMQL_SUBQUERY ? &t->u.subquery.at_ms : &t->u.sel.at_ms;
    if (*slot != PROMQL_AT_NONE) {
        soft_error(p, e->pos_start, "@ <timestamp> may not be set multiple times");
        return;
    }
    *slot = at;
    if (at == PROMQL_AT_TIME) {
        /* timestamp.FromFloatSeconds; beyond int64 Go's conversion gives
         * the minimum on amd64, which is kept here for the same tree */
        double v = round(ts * 1000.0);
        *ms = (isnan(v) || v >= 9223372036854775807.0 || v < -9223372036854775808.0) ? INT64_MIN : (int64_t)v;
    }
    e->pos_end = p->last_end;
}

/* [range] or [range:step] after e; the current token is the '['. */
static promql_node_t *parse_range(parser_t *p, promql_node_t *e)
{
    int lb = p->tok.start;
    advance(p);
    if (p->tok.type != PROMQL_T_DURATION) unexpected(p, "subquery selector", "duration");
    int64_t range = parse_duration_tok(p, &p->tok);
    advance(p);
    if (p->tok.type == PROMQL_T_RBRACKET) {
        promql_node_t *n = new_node(p, PROMQL_MATRIX_SEL, e->pos_start, p->tok.end);
        advance(p);
        if (e->kind != PROMQL_VECTOR_SEL)
            soft_error(p, lb, "ranges only allowed for vector selectors");
        else if (e->u.sel.offset_ms != 0)
            soft_error(p, lb, "no offset modifiers allowed before range");
        else if (e->u.sel.at != PROMQL_AT_NONE)
            soft_error(p, lb, "no @ modifiers allowed before range");
        n->u.matrix.vector = e;
        n->u.matrix.range_ms = range;
        n->type = PROMQL_TYPE_MATRIX;
        set_depth(p, p->ret_depth + 1);
        return n;
    }
    if (p->tok.type != PROMQL_T_COLON) unexpected(p, "subquery or range", "\":\" or \"]\"");
    advance(p);
    int64_t step = 0;
    int have_step = 0;
    if (p->tok.type == PROMQL_T_DURATION) {
        step = parse_duration_tok(p, &p->tok);
        have_step = 1;
        advance(p);
    }
    if (p->tok.type != PROMQL_T_RBRACKET)
        unexpected(p, "subquery selector", have_step ? "\"]\"" : "duration or \"]\"");
    promql_node_t *n = new_node(p, PROMQL_SUBQUERY, e->pos_start, p->tok.end);
    advance(p);
    n->u.subquery.expr = e;
    n->u.subquery.range_ms = range;
    n->u.subquery.step_ms = step;
    n->type = PROMQL_TYPE_MATRIX;
    set_depth(p, p->ret_depth + 1);
    return n;
}

static promql_node_t *parse_postfix(parser_t *p, promql_node_t *e)
{
    for (;;) {
        switch (p->tok.type) {
        case PROMQL_T_LBRACKET: e = parse_range(p, e); break;
        case PROMQL_T_OFFSET: parse_offset(p, e); break;
        case PROMQL_T_AT: parse_at(p, e); break;
        default: return e;
        }
    }
}

static promql_node_t *parse_unary(parser_t *p)
{
    if (p->tok.type == PROMQL_T_ADD || p->tok.type == PROMQL_T_SUB) {
        int start = p->tok.start, neg = p->tok.type == PROMQL_T_SUB;
        advance(p);
        /* Prometheus gives unary operators the precedence of *: the operand
         * takes in ^ only ("-a ^ b" is -(a ^ b), "-a * b" is (-a) * b). */
        promql_node_t *e = parse_expr(p, PREC_POW);
        if (e->kind == PROMQL_NUMBER) {
            /* a signed number literal is folded, as Prometheus does */
            if (neg) e->u.number = -e->u.number;
            e->pos_start = start;
            return e;
        }
        promql_node_t *n = new_node(p, PROMQL_UNARY, start, e->pos_end);
        n->u.unary.expr = e;
        n->u.unary.negate = neg;
        n->type = e->type;
        set_depth(p, p->ret_depth + 1);
        return n;
    }
    return parse_postfix(p, parse_primary(p));
}

static promql_node_t *parse_expr(parser_t *p, int min_prec)
{
    if (++p->nest > PROMQL_MAX_DEPTH) too_deep(p);
    promql_node_t *lhs = parse_unary(p);
    int lhs_depth = p->ret_depth;
    for (;;) {
        promql_binop_t op;
        int prec;
        if (!binop_of(p->tok.type, &op, &prec) || prec < min_prec) {
            p->nest--;
            p->ret_depth = lhs_depth;
            return lhs;
        }
        advance(p);
        promql_node_t *n = new_node(p, PROMQL_BINARY, lhs->pos_start, 0);
        n->u.binary.op = op;
        n->u.binary.card = PROMQL_CARD_ONE_TO_ONE;
        if (p->tok.type == PROMQL_T_BOOL) {
            n->u.binary.return_bool = 1;
            advance(p);
        }
        if (p->tok.type == PROMQL_T_ON || p->tok.type == PROMQL_T_IGNORING) {
            n->u.binary.on = p->tok.type == PROMQL_T_ON;
            advance(p);
            parse_grouping(p, &n->u.binary.matching);
            if (p->tok.type == PROMQL_T_GROUP_LEFT || p->tok.type == PROMQL_T_GROUP_RIGHT) {
                n->u.binary.card = p->tok.type == PROMQL_T_GROUP_LEFT ? PROMQL_CARD_MANY_TO_ONE
                                                                      : PROMQL_CARD_ONE_TO_MANY;
                advance(p);
                if (p->tok.type == PROMQL_T_LPAREN || !starts_expr(p->tok.type))
                    parse_grouping(p, &n->u.binary.include);
            }
        }
        /* ^ is right-associative, the others left */
        promql_node_t *rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
        n->u.binary.lhs = lhs;
        n->u.binary.rhs = rhs;
        n->pos_end = rhs->pos_end;
        lhs = n;
        lhs_depth = 1 + (lhs_depth > p->ret_depth ? lhs_depth : p->ret_depth);
        set_depth(p, lhs_depth);
    }
}

/* ---- the type check (Prometheus' checkAST) ---- */

static const char *documented_type(promql_type_t t)
{
    switch (t) {
    case PROMQL_TYPE_VECTOR: return "instant vector";
    case PROMQL_TYPE_MATRIX: return "range vector";
    case PROMQL_TYPE_SCALAR: return "scalar";
    case PROMQL_TYPE_STRING: return "string";
    case PROMQL_TYPE_NONE: break;
    }
    return "none";
}

static promql_type_t check(parser_t *p, promql_node_t *n);

static void expect_type(parser_t *p, promql_node_t *n, promql_type_t want, const char *ctx)
{
    promql_type_t t = check(p, n);
    if (t != want)
        soft_error(p, n->pos_start, "expected type %s in %s, got %s", documented_type(want), ctx,
                   documented_type(t));
}

static int is_comparison(promql_binop_t op) { return op >= PROMQL_OP_EQL && op <= PROMQL_OP_LTE; }
static int is_set_op(promql_binop_t op)
{
    return op == PROMQL_OP_AND || op == PROMQL_OP_OR || op == PROMQL_OP_UNLESS;
}

static int is_space_c(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Where the operator of a binary expression starts (Prometheus' opRange). */
static int op_pos(parser_t *p, const promql_node_t *n)
{
    int i = n->u.binary.lhs->pos_end;
    while (i < p->len && is_space_c(p->in[i])) i++;
    return i;
}

/* Does the matcher accept the empty value (Prometheus' lm.Matches(""))?
 * A regex POSIX cannot compile, or that tsdb_regex_check refuses as too
 * costly for glibc's regcomp, is taken as not matching it: the selector
 * then passes here and the evaluator's select refuses the regex. */
static int matches_empty(const promql_matcher_t *m)
{
    if (m->type == TSDB_MATCH_EQ) return m->value[0] == '\0';
    if (m->type == TSDB_MATCH_NEQ) return m->value[0] != '\0';
    if (tsdb_regex_check(m->value, NULL, 0) != 0) return m->type == TSDB_MATCH_NRE;
    size_t l = strlen(m->value);
    char *a = malloc(l + 5);
    if (!a) return 0;
    snprintf(a, l + 5, "^(%s)$", m->value);
    regex_t re;
    int hit = 0;
    if (regcomp(&re, a, REG_EXTENDED | REG_NOSUB) == 0) {
        hit = regexec(&re, "", 0, NULL, 0) == 0;
        regfree(&re);
    } else {
        free(a);
        return m->type == TSDB_MATCH_NRE;
    }
    free(a);
    return m->type == TSDB_MATCH_RE ? hit : !hit;
}

static promql_type_t check(parser_t *p, promql_node_t *n)
{
    switch (n->kind) {
    case PROMQL_NUMBER: n->type = PROMQL_TYPE_SCALAR; break;
    case PROMQL_STRING_LIT: n->type = PROMQL_TYPE_STRING; break;
    case PROMQL_VECTOR_SEL: {
        n->type = PROMQL_TYPE_VECTOR;
        size_t nm = n->u.sel.nmatchers;
        if (n->u.sel.name) {
            for (size_t i = 0; i + 1 < nm; i++) {
                if (!strcmp(n->u.sel.matchers[i].name, "__name__")) {
                    strata_buf_t b;
                    strata_buf_init(&b, p->arena, 64);
                    promql_go_quote(&b, n->u.sel.name, strlen(n->u.sel.name), 0);
                    strata_buf_puts(&b, " or ");
                    promql_go_quote(&b, n->u.sel.matchers[i].value, strlen(n->u.sel.matchers[i].value), 0);
                    soft_error(p, n->pos_start, "metric name must not be set twice: %s",
                               b.data ? b.data : "");
                }
            }
        }
        int not_empty = 0;
        for (size_t i = 0; i < nm && !not_empty; i++)
            if (!matches_empty(&n->u.sel.matchers[i])) not_empty = 1;
        if (!not_empty)
            soft_error(p, n->pos_start, "vector selector must contain at least one non-empty matcher");
        break;
    }
    case PROMQL_MATRIX_SEL:
        check(p, n->u.matrix.vector);
        n->type = PROMQL_TYPE_MATRIX;
        break;
    case PROMQL_SUBQUERY: {
        promql_type_t t = check(p, n->u.subquery.expr);
        if (t != PROMQL_TYPE_VECTOR)
            soft_error(p, n->pos_start, "subquery is only allowed on instant vector, got %s instead",
                       promql_type_name(t));
        n->type = PROMQL_TYPE_MATRIX;
        break;
    }
    case PROMQL_PAREN: n->type = check(p, n->u.unary.expr); break;
    case PROMQL_UNARY: {
        promql_type_t t = check(p, n->u.unary.expr);
        if (t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR)
            soft_error(
                p, n->pos_start,
                "unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
                documented_type(t));
        n->type = t;
        break;
    }
    case PROMQL_BINARY: {
        promql_type_t lt = check(p, n->u.binary.lhs);
        promql_type_t rt = check(p, n->u.binary.rhs);
        promql_binop_t op = n->u.binary.op;
        if (n->u.binary.return_bool && !is_comparison(op))
            soft_error(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
        if (is_comparison(op) && !n->u.binary.return_bool && lt == PROMQL_TYPE_SCALAR &&
            rt == PROMQL_TYPE_SCALAR)
            soft_error(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
        if (is_set_op(op) && n->u.binary.card == PROMQL_CARD_ONE_TO_ONE)
            n->u.binary.card = PROMQL_CARD_MANY_TO_MANY;
        if (n->u.binary.on)
            for (size_t i = 0; i < n->u.binary.matching.n; i++)
                for (size_t j = 0; j < n->u.binary.include.n; j++)
                    if (!strcmp(n->u.binary.matching.names[i], n->u.binary.include.names[j])) {
                        strata_buf_t b;
                        strata_buf_init(&b, p->arena, 32);
                        promql_go_quote(&b, n->u.binary.matching.names[i],
                                        strlen(n->u.binary.matching.names[i]), 0);
                        soft_error(p, op_pos(p, n), "label %s must not occur in ON and GROUP clause at once",
                                   b.data ? b.data : "");
                    }
        if (lt != PROMQL_TYPE_SCALAR && lt != PROMQL_TYPE_VECTOR)
            soft_error(p, n->u.binary.lhs->pos_start,
                       "binary expression must contain only scalar and instant vector types");
        if (rt != PROMQL_TYPE_SCALAR && rt != PROMQL_TYPE_VECTOR)
            soft_error(p, n->u.binary.rhs->pos_start,
                       "binary expression must contain only scalar and instant vector types");
        if (lt != PROMQL_TYPE_VECTOR || rt != PROMQL_TYPE_VECTOR) {
            if (n->u.binary.matching.n > 0)
                soft_error(p, n->pos_start, "vector matching only allowed between instant vectors");
            /* Prometheus drops the matching (VectorMatching = nil) */
            n->u.binary.card = PROMQL_CARD_ONE_TO_ONE;
            n->u.binary.on = 0;
            n->u.binary.matching.n = 0;
            n->u.binary.include.n = 0;
        } else if (is_set_op(op)) {
            if (n->u.binary.card == PROMQL_CARD_ONE_TO_MANY || n->u.binary.card == PROMQL_CARD_MANY_TO_ONE)
                soft_error(p, n->pos_start, "no grouping allowed for \"%s\" operation",
                           promql_binop_name(op));
        }
        if ((lt == PROMQL_TYPE_SCALAR || rt == PROMQL_TYPE_SCALAR) && is_set_op(op))
            soft_error(p, n->pos_start, "set operator \"%s\" not allowed in binary scalar expression",
                       promql_binop_name(op));
        n->type = lt == PROMQL_TYPE_SCALAR && rt == PROMQL_TYPE_SCALAR ? PROMQL_TYPE_SCALAR
                                                                       : PROMQL_TYPE_VECTOR;
        break;
    }
    case PROMQL_AGGREGATE: {
        promql_aggop_t op = n->u.agg.op;
        expect_type(p, n->u.agg.expr, PROMQL_TYPE_VECTOR, "aggregation expression");
        if (op == PROMQL_AGG_COUNT_VALUES)
            expect_type(p, n->u.agg.param, PROMQL_TYPE_STRING, "aggregation parameter");
        else if (n->u.agg.param)
            expect_type(p, n->u.agg.param, PROMQL_TYPE_SCALAR, "aggregation parameter");
        n->type = PROMQL_TYPE_VECTOR;
        break;
    }
    case PROMQL_CALL: {
        const promql_function_t *f = n->u.call.func;
        size_t na = n->u.call.nargs;
        int variadic = !(f->nargs_min == f->nargs_max);
        int ntypes = f->nargs_max >= 0 ? f->nargs_max : f->nargs_min + 1;
        if (!variadic) {
            if ((size_t)ntypes != na)
                soft_error(p, n->pos_start, "expected %d argument(s) in call to \"%s\", got %zu", ntypes,
                           f->name, na);
        } else if ((size_t)f->nargs_min > na) {
            soft_error(p, n->pos_start, "expected at least %d argument(s) in call to \"%s\", got %zu",
                       f->nargs_min, f->name, na);
        } else if (f->nargs_max >= 0 && (size_t)f->nargs_max < na) {
            soft_error(p, n->pos_start, "expected at most %d argument(s) in call to \"%s\", got %zu",
                       f->nargs_max, f->name, na);
        }
        char ctx[96];
        snprintf(ctx, sizeof ctx, "call to function \"%s\"", f->name);
        for (size_t i = 0; i < na; i++) {
            size_t ti = i;
            if (ti >= (size_t)ntypes) {
                if (!variadic) break;
                ti = (size_t)ntypes - 1;
            }
            expect_type(p, n->u.call.args[i], f->arg_types[ti], ctx);
        }
        n->type = f->return_type;
        break;
    }
    }
    return n->type;
}

/* ---- entry ---- */

static void format_error(const char *query, int pos, const char *text, promql_error_t *err)
{
    int line = 1, last_nl = -1;
    for (int i = 0; i < pos && query[i]; i++)
        if (query[i] == '\n') {
            line++;
            last_nl = i;
        }
    err->pos = pos;
    snprintf(err->msg, sizeof err->msg, "%d:%d: parse error: %s", line, pos - last_nl, text);
}

int promql_parse(const char *query, strata_arena_t *arena, promql_node_t **out, promql_error_t *err)
{
    parser_t *p = strata_arena_calloc(arena, 1, sizeof *p);
    if (!p) return STRATA_ENOMEM;
    size_t len = strlen(query);
    if (len > 0x7fffffff) len = 0x7fffffff;
    p->in = query;
    p->len = (int)len;
    p->arena = arena;
    promql_lex_init(&p->lx, query, p->len);
    *out = NULL;
    if (err) {
        err->pos = 0;
        err->msg[0] = '\0';
    }
    promql_node_t *volatile root = NULL;
    if (setjmp(p->fail) == 0) {
        fetch(p, &p->tok);
        if (p->tok.type == PROMQL_T_EOF) hard_error(p, 0, "no expression found in input");
        root = parse_expr(p, 0);
        if (p->tok.type != PROMQL_T_EOF) unexpected(p, NULL, NULL);
        if (!p->err_set) check(p, root);
    }
    if (p->rc == STRATA_ENOMEM) return STRATA_ENOMEM;
    if (p->err_set) {
        if (err) format_error(query, p->err_pos, p->err_text, err);
        return STRATA_EINVAL;
    }
    *out = root;
    return 0;
}
