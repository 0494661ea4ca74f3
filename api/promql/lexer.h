/*
 * lexer.h: PromQL's tokens and the lexer that makes them (lexer.c), used by
 * the parser only (parser.c).  The lexer is modal as Prometheus' is: inside
 * {} only label names, operators and strings exist; right after [ a
 * duration is expected; keywords are case-insensitive.
 */
#ifndef PROMQL_LEXER_H
#define PROMQL_LEXER_H

#include <stddef.h>

#include "strata_buf.h"

typedef enum promql_tok_type {
    PROMQL_T_EOF,
    PROMQL_T_ERROR, /* msg holds Prometheus' lexer message */
    PROMQL_T_IDENT,
    PROMQL_T_METRIC_IDENT, /* an identifier with a ':' */
    PROMQL_T_NUMBER,       /* digits, hex, Inf, NaN */
    PROMQL_T_DURATION,
    PROMQL_T_STRING,
    PROMQL_T_LPAREN,
    PROMQL_T_RPAREN,
    PROMQL_T_LBRACE,
    PROMQL_T_RBRACE,
    PROMQL_T_LBRACKET,
    PROMQL_T_RBRACKET,
    PROMQL_T_COMMA,
    PROMQL_T_EQL, /* = (matchers) */
    PROMQL_T_COLON,
    PROMQL_T_AT,
    /* operators */
    PROMQL_T_ADD,
    PROMQL_T_SUB,
    PROMQL_T_MUL,
    PROMQL_T_DIV,
    PROMQL_T_MOD,
    PROMQL_T_POW,
    PROMQL_T_EQLC, /* == */
    PROMQL_T_NEQ,
    PROMQL_T_LSS,
    PROMQL_T_LTE,
    PROMQL_T_GTR,
    PROMQL_T_GTE,
    PROMQL_T_EQL_REGEX,
    PROMQL_T_NEQ_REGEX,
    PROMQL_T_LAND,
    PROMQL_T_LOR,
    PROMQL_T_LUNLESS,
    PROMQL_T_ATAN2,
    /* aggregators: aggop holds which */
    PROMQL_T_AGGR,
    /* keywords */
    PROMQL_T_BOOL,
    PROMQL_T_BY,
    PROMQL_T_WITHOUT,
    PROMQL_T_ON,
    PROMQL_T_IGNORING,
    PROMQL_T_GROUP_LEFT,
    PROMQL_T_GROUP_RIGHT,
    PROMQL_T_OFFSET,
    PROMQL_T_START,
    PROMQL_T_END,
} promql_tok_type_t;

typedef struct promql_tok {
    promql_tok_type_t type;
    int start, end;  /* byte range in the input */
    int aggop;       /* PROMQL_T_AGGR: a promql_aggop_t */
    const char *msg; /* PROMQL_T_ERROR: the message (lexer's buffer) */
} promql_tok_t;

typedef struct promql_lexer {
    const char *in;
    int len;
    int pos;
    int paren_depth;
    int brace_open;
    int bracket_open;
    int got_colon;
    int want_duration; /* the token after [ */
    char msg[256];
} promql_lexer_t;

void promql_lex_init(promql_lexer_t *lx, const char *in, int len);
/* The next token; after an ERROR or EOF it keeps answering the same. */
void promql_lex_next(promql_lexer_t *lx, promql_tok_t *tok);

/* Go's strconv.Quote of s[0..n) appended to b (what Prometheus' %q prints):
 * with maxrunes > 0 only the first maxrunes runes are quoted, as %.10q. */
void promql_go_quote(strata_buf_t *b, const char *s, size_t n, int maxrunes);
/* Go's %q of one rune ('a', '\n', '\x01'), appended to b. */
void promql_go_quote_rune(strata_buf_t *b, long r);

#endif
