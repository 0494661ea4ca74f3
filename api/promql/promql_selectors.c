/*
 * promql_selectors.c: what the HTTP API asks of a parsed expression besides
 * evaluating it (promql.h): the matchers of a plain vector selector (the
 * match[] parameters of /api/v1/series and the label endpoints), and whether
 * an expression reads any series at all (/api/v1/query_exemplars).  Kept
 * apart from the parser so the tree stays the room's own (promql_internal.h).
 */
#include "promql_internal.h"

int promql_selector_matchers(const promql_node_t *node, strata_arena_t *arena, tsdb_matcher_t **m, size_t *n)
{
    if (!node || node->kind != PROMQL_VECTOR_SEL || node->u.sel.offset_ms != 0 ||
        node->u.sel.at != PROMQL_AT_NONE)
        return STRATA_EINVAL;
    size_t k = node->u.sel.nmatchers;
    tsdb_matcher_t *out = strata_arena_calloc(arena, k ? k : 1, sizeof *out);
    if (!out) return STRATA_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        const promql_matcher_t *pm = &node->u.sel.matchers[i];
        out[i] = (tsdb_matcher_t){ (enum tsdb_match_op)pm->type, pm->name, pm->value };
    }
    *m = out;
    *n = k;
    return 0;
}

int promql_has_selectors(const promql_node_t *node)
{
    if (!node) return 0;
    switch (node->kind) {
    case PROMQL_VECTOR_SEL:
    case PROMQL_MATRIX_SEL: return 1;
    case PROMQL_SUBQUERY: return promql_has_selectors(node->u.subquery.expr);
    case PROMQL_PAREN:
    case PROMQL_UNARY: return promql_has_selectors(node->u.unary.expr);
    case PROMQL_BINARY:
        return promql_has_selectors(node->u.binary.lhs) || promql_has_selectors(node->u.binary.rhs);
    case PROMQL_AGGREGATE:
        return promql_has_selectors(node->u.agg.expr) || promql_has_selectors(node->u.agg.param);
    case PROMQL_CALL:
        for (size_t i = 0; i < node->u.call.nargs; i++)
            if (promql_has_selectors(node->u.call.args[i])) return 1;
        return 0;
    default: return 0;
    }
}
