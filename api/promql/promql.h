/*
 * promql.h: the whole contract of strata's PromQL engine (docs/promql.md).
 *
 * Three steps, each its own file group in api/promql/:
 *   - parse:    promql_parse() turns a query string into an expression tree
 *               (lexer.c, parser.c; printer.c prints it back);
 *   - evaluate: promql_eval() runs the tree over the store, reading only
 *               through the read seam (api/query/read.h), step by step
 *               (eval*.c, functions.c, aggregate.c, binop.c);
 *   - render:   the caller (api/http/routes_prom.c) writes the result in the
 *               Prometheus HTTP API's JSON.
 *
 * The language is float PromQL with Prometheus 3 semantics: range selectors
 * and the lookback window are left-open, (t - range, t].  Native histograms
 * are out of scope.
 *
 * Memory: everything a parse or an evaluation allocates lives in the arena
 * the caller passes (one per request) and goes with strata_arena_free(); no
 * result pointer outlives that arena.
 *
 * Errors (the one error space of strata_err.h; the message goes to msg):
 *   STRATA_EINVAL    the query or a parameter is wrong   -> 400 bad_data
 *   STRATA_EEXEC     evaluation failed (many-to-many matching, duplicate
 *                    series, too many points per series) -> 422 execution
 *   STRATA_ELIMIT    --query-max-samples exceeded        -> 422 execution
 *   STRATA_ETIMEOUT  --query-timeout passed              -> 503 timeout
 *   STRATA_ENOMEM, STRATA_EIO ...                        -> 503
 */
#ifndef PROMQL_H
#define PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "read.h"
#include "strata_arena.h"
#include "strata_err.h"
#include "tsdb.h"

/* A parsed expression (struct body in promql_internal.h). */
typedef struct promql_node promql_node_t;

/* The type an expression evaluates to. */
typedef enum promql_type {
    PROMQL_TYPE_NONE = 0,
    PROMQL_TYPE_SCALAR,
    PROMQL_TYPE_VECTOR, /* instant vector */
    PROMQL_TYPE_MATRIX, /* range vector */
    PROMQL_TYPE_STRING,
} promql_type_t;

/* "scalar", "vector", "matrix", "string": the resultType names of the API. */
const char *promql_type_name(promql_type_t t);

/* A parse error where Prometheus gives one: msg is the whole text
 * Prometheus' ParseErr prints, "1:5: parse error: unexpected <EOF>" (line and
 * column 1-based); pos is the byte offset it names. */
typedef struct promql_error {
    int pos;
    char msg[512];
} promql_error_t;

/* Parses query (NUL-terminated).  The tree lives in arena.  0, or
 * STRATA_EINVAL with err filled, or STRATA_ENOMEM. */
int promql_parse(const char *query, strata_arena_t *arena, promql_node_t **out, promql_error_t *err);
/* The type the expression evaluates to. */
promql_type_t promql_node_type(const promql_node_t *node);
/* The expression printed back as PromQL in Prometheus' canonical form
 * (its String()); promql_parse of the text gives an equal tree.  The string
 * lives in arena; NULL on ENOMEM. */
char *promql_print(const promql_node_t *node, strata_arena_t *arena);

/* For the HTTP API's match[] parameters (Prometheus' ParseMetricSelector):
 * when node is a plain vector selector (no offset, no @), its matchers as
 * the read seam takes them, in arena; else STRATA_EINVAL.  STRATA_ENOMEM.
 * (promql_selectors.c) */
int promql_selector_matchers(const promql_node_t *node, strata_arena_t *arena, tsdb_matcher_t **m, size_t *n);
/* 1 when the expression holds a series selector (Prometheus'
 * ExtractSelectors is not empty), else 0: query_exemplars answers 204 then. */
int promql_has_selectors(const promql_node_t *node);

/* What an evaluation reads from and how far it may go. */
typedef struct promql_engine_opts {
    const api_read_source_t *src; /* borrowed */
    int32_t tenant;               /* from the token; api_read_select adds its matcher */
    api_read_budget_t *budget;    /* borrowed; the request's --query-timeout / --query-max-samples */
    int64_t lookback_ms;          /* instant selector lookback, default 5m (0 = default) */
    size_t max_points_per_series; /* range query points per series, default 11000 (0 = default) */
} promql_engine_opts_t;

/* One series of a result.  A vector's series have one point each (at the
 * evaluation time); a matrix's have one or more, ascending.  Labels are
 * sorted by name, the tenant label removed. */
typedef struct promql_series {
    const tsdb_label_t *labels;
    size_t nlabels;
    const tsdb_sample_t *points;
    size_t npoints;
} promql_series_t;

typedef struct promql_result {
    promql_type_t type;
    promql_series_t *series; /* VECTOR and MATRIX */
    size_t nseries;
    int64_t t;             /* SCALAR and STRING: the evaluation time */
    double scalar;         /* SCALAR */
    const char *string;    /* STRING */
    const char **warnings; /* e.g. damaged pages skipped (api_read_set_damaged) */
    size_t nwarnings;
} promql_result_t;

/* Evaluates expr.  An instant query is start == end with step 0: the result
 * has the expression's type (vector, scalar, matrix or string).  A range
 * query (step > 0, start <= end) evaluates at start, start + step, ... <= end
 * and always answers a MATRIX (a scalar expression gives one series with no
 * labels); an expression of type matrix or string is STRATA_EINVAL
 * ("invalid expression type \"range vector\" for range query, must be Scalar
 * or instant Vector").  Series are ordered as Prometheus orders them (a
 * matrix by labels; a vector as evaluated, sort()/sort_desc()/topk keep
 * theirs).  Everything lives in arena.  Errors as above, message in msg. */
int promql_eval(const promql_engine_opts_t *opts, const promql_node_t *expr, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, strata_arena_t *arena, promql_result_t *out, char *msg, size_t msgcap);

#endif
