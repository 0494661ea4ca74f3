/*
 * promql_internal.h: the expression tree shared by the parser, the printer
 * and the evaluator of api/promql/ (nothing outside the room includes it).
 *
 * The shape follows Prometheus' promql/parser AST node for node, so that
 * printing, types and error messages can match it.  Every node, string and
 * array lives in the arena of the parse.  Times and durations are int64 ms.
 */
#ifndef PROMQL_INTERNAL_H
#define PROMQL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "promql.h"

typedef enum promql_node_kind {
    PROMQL_NUMBER,     /* 1, 1e3, 0x1f, Inf, NaN */
    PROMQL_STRING_LIT, /* "a", 'a', `a` */
    PROMQL_VECTOR_SEL, /* foo{a="b"} offset 5m @ 123 */
    PROMQL_MATRIX_SEL, /* foo{a="b"}[5m] (offset and @ on the inner selector) */
    PROMQL_SUBQUERY,   /* expr[1h:5m] offset 1m @ end() */
    PROMQL_PAREN,      /* (expr) */
    PROMQL_UNARY,      /* -expr, +expr */
    PROMQL_BINARY,     /* a + on(x) group_left(y) b */
    PROMQL_AGGREGATE,  /* sum by (x) (expr), topk(3, expr) */
    PROMQL_CALL,       /* rate(x[5m]) */
} promql_node_kind_t;

/* Binary operators, in Prometheus' precedence groups (lowest first):
 * or < and, unless < comparisons < + - < * / % atan2 < ^ (right-assoc). */
typedef enum promql_binop {
    PROMQL_OP_ADD,
    PROMQL_OP_SUB,
    PROMQL_OP_MUL,
    PROMQL_OP_DIV,
    PROMQL_OP_MOD,
    PROMQL_OP_POW,
    PROMQL_OP_ATAN2,
    PROMQL_OP_EQL, /* == */
    PROMQL_OP_NEQ, /* != */
    PROMQL_OP_GTR, /* > */
    PROMQL_OP_LSS, /* < */
    PROMQL_OP_GTE, /* >= */
    PROMQL_OP_LTE, /* <= */
    PROMQL_OP_AND,
    PROMQL_OP_OR,
    PROMQL_OP_UNLESS,
} promql_binop_t;

typedef enum promql_aggop {
    PROMQL_AGG_SUM,
    PROMQL_AGG_AVG,
    PROMQL_AGG_MIN,
    PROMQL_AGG_MAX,
    PROMQL_AGG_COUNT,
    PROMQL_AGG_GROUP,
    PROMQL_AGG_STDDEV,
    PROMQL_AGG_STDVAR,
    PROMQL_AGG_TOPK,         /* param: scalar k */
    PROMQL_AGG_BOTTOMK,      /* param: scalar k */
    PROMQL_AGG_QUANTILE,     /* param: scalar phi */
    PROMQL_AGG_COUNT_VALUES, /* param: string label name */
    PROMQL_AGG_LIMITK,       /* param: scalar k */
    PROMQL_AGG_LIMIT_RATIO,  /* param: scalar ratio */
} promql_aggop_t;

typedef enum promql_card {
    PROMQL_CARD_ONE_TO_ONE,
    PROMQL_CARD_MANY_TO_ONE,  /* group_left */
    PROMQL_CARD_ONE_TO_MANY,  /* group_right */
    PROMQL_CARD_MANY_TO_MANY, /* and, or, unless */
} promql_card_t;

/* The @ modifier of a selector or subquery. */
typedef enum promql_at {
    PROMQL_AT_NONE,
    PROMQL_AT_TIME,  /* @ <number>: at_ms */
    PROMQL_AT_START, /* @ start() */
    PROMQL_AT_END,   /* @ end() */
} promql_at_t;

/* A label matcher; tsdb_matcher_t's kinds (=, !=, =~, !~). */
typedef struct promql_matcher {
    const char *name;
    const char *value;
    int type; /* TSDB_MATCH_EQ, TSDB_MATCH_NEQ, TSDB_MATCH_RE, TSDB_MATCH_NRE (tsdb.h) */
} promql_matcher_t;

/* A list of label names (by/without, on/ignoring, group_left/right). */
typedef struct promql_labels {
    const char **names;
    size_t n;
} promql_labels_t;

struct promql_node {
    promql_node_kind_t kind;
    promql_type_t type;     /* what it evaluates to, set by the parser's type check */
    int pos_start, pos_end; /* byte range in the query, for messages */
    union {
        double number;                  /* PROMQL_NUMBER */
        const char *string;             /* PROMQL_STRING_LIT (unquoted, escapes resolved) */
        struct {                        /* PROMQL_VECTOR_SEL */
            const char *name;           /* metric name as written before {}, or NULL */
            promql_matcher_t *matchers; /* all of them, __name__="name" included */
            size_t nmatchers;
            int64_t offset_ms; /* may be negative */
            promql_at_t at;
            int64_t at_ms; /* PROMQL_AT_TIME */
        } sel;
        struct {                   /* PROMQL_MATRIX_SEL */
            promql_node_t *vector; /* a PROMQL_VECTOR_SEL (holds offset and @) */
            int64_t range_ms;
        } matrix;
        struct { /* PROMQL_SUBQUERY */
            promql_node_t *expr;
            int64_t range_ms;
            int64_t step_ms; /* 0 = the default evaluation interval (1m) */
            int64_t offset_ms;
            promql_at_t at;
            int64_t at_ms;
        } subquery;
        struct { /* PROMQL_PAREN, PROMQL_UNARY */
            promql_node_t *expr;
            int negate; /* PROMQL_UNARY: 1 for -, 0 for + */
        } unary;
        struct { /* PROMQL_BINARY */
            promql_binop_t op;
            promql_node_t *lhs, *rhs;
            int return_bool; /* the bool modifier of a comparison */
            /* Vector matching, meaningful when both sides are vectors: */
            promql_card_t card;
            int on;                   /* 1: on(labels), 0: ignoring(labels) (or neither) */
            promql_labels_t matching; /* the on/ignoring list */
            promql_labels_t include;  /* the group_left/group_right list */
        } binary;
        struct { /* PROMQL_AGGREGATE */
            promql_aggop_t op;
            promql_node_t *expr;
            promql_node_t *param; /* topk/bottomk/quantile/count_values/limitk/limit_ratio, else NULL */
            promql_labels_t grouping;
            int without; /* 1: without(grouping), 0: by(grouping) or none */
        } agg;
        struct { /* PROMQL_CALL */
            const struct promql_function *func;
            promql_node_t **args;
            size_t nargs;
        } call;
    } u;
};

/* A function of the language, from the one table in functions.c. */
typedef struct promql_function {
    const char *name;
    const promql_type_t *arg_types; /* nargs_min..; a variadic tail repeats the last */
    int nargs_min;                  /* arguments required */
    int nargs_max;                  /* -1 = any number (label_join) */
    promql_type_t return_type;
} promql_function_t;

/* The function called name, or NULL (the parser's "unknown function"). */
const promql_function_t *promql_function_lookup(const char *name, size_t len);

/* Aggregation and operator names as PromQL spells them ("sum", "+", "and"). */
const char *promql_aggop_name(promql_aggop_t op);
const char *promql_binop_name(promql_binop_t op);

#endif
