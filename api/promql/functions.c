/*
 * functions.c: the one table of PromQL's float functions (names, argument
 * types, optional and variadic arguments, result type) as Prometheus'
 * promql/parser/functions.go defines them, and the names of operators,
 * aggregations and types.  The parser checks calls against it; the
 * evaluator dispatches on the name.
 */
#include <string.h>

#include "promql_internal.h"

#define S PROMQL_TYPE_SCALAR
#define V PROMQL_TYPE_VECTOR
#define M PROMQL_TYPE_MATRIX
#define T PROMQL_TYPE_STRING

static const promql_type_t a_v[] = { V };
static const promql_type_t a_m[] = { M };
static const promql_type_t a_s[] = { S };
static const promql_type_t a_vs[] = { V, S };
static const promql_type_t a_vss[] = { V, S, S };
static const promql_type_t a_sv[] = { S, V };
static const promql_type_t a_sm[] = { S, M };
static const promql_type_t a_ms[] = { M, S };
static const promql_type_t a_mss[] = { M, S, S };
static const promql_type_t a_vttt[] = { V, T, T, T };
static const promql_type_t a_vtttt[] = { V, T, T, T, T };
static const promql_type_t a_vt[] = { V, T };

/* Sorted by name (promql_function_lookup bisects).  nargs_max -1: the last
 * type repeats without bound; a function with fewer required than typed
 * arguments has optional ones (round's to_nearest, the time functions'
 * vector, which defaults to vector(time())). */
static const promql_function_t functions[] = {
    { "abs", a_v, 1, 1, V },
    { "absent", a_v, 1, 1, V },
    { "absent_over_time", a_m, 1, 1, V },
    { "acos", a_v, 1, 1, V },
    { "acosh", a_v, 1, 1, V },
    { "asin", a_v, 1, 1, V },
    { "asinh", a_v, 1, 1, V },
    { "atan", a_v, 1, 1, V },
    { "atanh", a_v, 1, 1, V },
    { "avg_over_time", a_m, 1, 1, V },
    { "ceil", a_v, 1, 1, V },
    { "changes", a_m, 1, 1, V },
    { "clamp", a_vss, 3, 3, V },
    { "clamp_max", a_vs, 2, 2, V },
    { "clamp_min", a_vs, 2, 2, V },
    { "cos", a_v, 1, 1, V },
    { "cosh", a_v, 1, 1, V },
    { "count_over_time", a_m, 1, 1, V },
    { "day_of_month", a_v, 0, 1, V },
    { "day_of_week", a_v, 0, 1, V },
    { "day_of_year", a_v, 0, 1, V },
    { "days_in_month", a_v, 0, 1, V },
    { "deg", a_v, 1, 1, V },
    { "delta", a_m, 1, 1, V },
    { "deriv", a_m, 1, 1, V },
    { "double_exponential_smoothing", a_mss, 3, 3, V },
    { "exp", a_v, 1, 1, V },
    { "floor", a_v, 1, 1, V },
    { "histogram_quantile", a_sv, 2, 2, V },
    { "holt_winters", a_mss, 3, 3, V },
    { "hour", a_v, 0, 1, V },
    { "idelta", a_m, 1, 1, V },
    { "increase", a_m, 1, 1, V },
    { "irate", a_m, 1, 1, V },
    { "label_join", a_vttt, 3, -1, V },
    { "label_replace", a_vtttt, 5, 5, V },
    { "last_over_time", a_m, 1, 1, V },
    { "ln", a_v, 1, 1, V },
    { "log10", a_v, 1, 1, V },
    { "log2", a_v, 1, 1, V },
    { "mad_over_time", a_m, 1, 1, V },
    { "max_over_time", a_m, 1, 1, V },
    { "min_over_time", a_m, 1, 1, V },
    { "minute", a_v, 0, 1, V },
    { "month", a_v, 0, 1, V },
    { "pi", NULL, 0, 0, S },
    { "predict_linear", a_ms, 2, 2, V },
    { "present_over_time", a_m, 1, 1, V },
    { "quantile_over_time", a_sm, 2, 2, V },
    { "rad", a_v, 1, 1, V },
    { "rate", a_m, 1, 1, V },
    { "resets", a_m, 1, 1, V },
    { "round", a_vs, 1, 2, V },
    { "scalar", a_v, 1, 1, S },
    { "sgn", a_v, 1, 1, V },
    { "sin", a_v, 1, 1, V },
    { "sinh", a_v, 1, 1, V },
    { "sort", a_v, 1, 1, V },
    { "sort_by_label", a_vt, 1, -1, V },
    { "sort_by_label_desc", a_vt, 1, -1, V },
    { "sort_desc", a_v, 1, 1, V },
    { "sqrt", a_v, 1, 1, V },
    { "stddev_over_time", a_m, 1, 1, V },
    { "stdvar_over_time", a_m, 1, 1, V },
    { "sum_over_time", a_m, 1, 1, V },
    { "tan", a_v, 1, 1, V },
    { "tanh", a_v, 1, 1, V },
    { "time", NULL, 0, 0, S },
    { "timestamp", a_v, 1, 1, V },
    { "vector", a_s, 1, 1, V },
    { "year", a_v, 0, 1, V },
};

const promql_function_t *promql_function_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof functions / sizeof functions[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *f = functions[mid].name;
        size_t fl = strlen(f);
        int c = strncmp(f, name, fl < len ? fl : len);
        if (c == 0) c = fl < len ? -1 : fl > len ? 1 : 0;
        if (c == 0) return &functions[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *promql_aggop_name(promql_aggop_t op)
{
    static const char *const names[] = {
        [PROMQL_AGG_SUM] = "sum",           [PROMQL_AGG_AVG] = "avg",
        [PROMQL_AGG_MIN] = "min",           [PROMQL_AGG_MAX] = "max",
        [PROMQL_AGG_COUNT] = "count",       [PROMQL_AGG_GROUP] = "group",
        [PROMQL_AGG_STDDEV] = "stddev",     [PROMQL_AGG_STDVAR] = "stdvar",
        [PROMQL_AGG_TOPK] = "topk",         [PROMQL_AGG_BOTTOMK] = "bottomk",
        [PROMQL_AGG_QUANTILE] = "quantile", [PROMQL_AGG_COUNT_VALUES] = "count_values",
        [PROMQL_AGG_LIMITK] = "limitk",     [PROMQL_AGG_LIMIT_RATIO] = "limit_ratio",
    };
    if ((unsigned)op >= sizeof names / sizeof names[0]) return "?";
    return names[op];
}

const char *promql_binop_name(promql_binop_t op)
{
    static const char *const names[] = {
        [PROMQL_OP_ADD] = "+",         [PROMQL_OP_SUB] = "-",   [PROMQL_OP_MUL] = "*",
        [PROMQL_OP_DIV] = "/",         [PROMQL_OP_MOD] = "%",   [PROMQL_OP_POW] = "^",
        [PROMQL_OP_ATAN2] = "atan2",   [PROMQL_OP_EQL] = "==",  [PROMQL_OP_NEQ] = "!=",
        [PROMQL_OP_GTR] = ">",         [PROMQL_OP_LSS] = "<",   [PROMQL_OP_GTE] = ">=",
        [PROMQL_OP_LTE] = "<=",        [PROMQL_OP_AND] = "and", [PROMQL_OP_OR] = "or",
        [PROMQL_OP_UNLESS] = "unless",
    };
    if ((unsigned)op >= sizeof names / sizeof names[0]) return "?";
    return names[op];
}

const char *promql_type_name(promql_type_t t)
{
    switch (t) {
    case PROMQL_TYPE_SCALAR: return "scalar";
    case PROMQL_TYPE_VECTOR: return "vector";
    case PROMQL_TYPE_MATRIX: return "matrix";
    case PROMQL_TYPE_STRING: return "string";
    case PROMQL_TYPE_NONE: break;
    }
    return "none";
}

promql_type_t promql_node_type(const promql_node_t *node) { return node ? node->type : PROMQL_TYPE_NONE; }
