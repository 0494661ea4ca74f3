/*
 * printer.c: promql_print(), an expression tree printed back as PromQL in
 * Prometheus' canonical form (the String() methods of promql/parser/ast.go
 * and printer.go): numbers as Go's %v prints a float64, durations as
 * model.Duration prints them, matchers sorted and %q-quoted, the metric name
 * outside the braces, @ before offset.  Parsing the text gives the same
 * tree, and printing that gives the same text (docs/promql.md, "Parser").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexer.h"
#include "promql_internal.h"
#include "strata_buf.h"

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which fmt's %v uses: the
 * shortest digits that round-trip, exponent form when the decimal exponent
 * is below -4 or at least 6 (1e+06, 1.5e-05), plain otherwise. */
static void put_number(strata_buf_t *b, double v, int after_sign)
{
    if (isnan(v)) {
        strata_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        /* Prometheus prints +Inf; right after a unary sign, or leading the
         * left side of ^, that would read back as a unary operator, so
         * there it is plain Inf */
        strata_buf_puts(b, v < 0 ? "-Inf" : after_sign ? "Inf" : "+Inf");
        return;
    }
    if (v == 0) {
        strata_buf_puts(b, signbit(v) ? "-0" : "0");
        return;
    }
    char e[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v) break;
    }
    snprintf(e, sizeof e, "%.*e", prec, v);
    /* e: [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0, neg = 0;
    const char *s = e;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) strata_buf_put(b, "-", 1);
    if (exp < -4 || exp >= 6) {
        strata_buf_put(b, digits, 1);
        if (nd > 1) {
            strata_buf_put(b, ".", 1);
            strata_buf_put(b, digits + 1, (size_t)nd - 1);
        }
        strata_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    if (exp < 0) {
        strata_buf_puts(b, "0.");
        for (int i = -1; i > exp; i--) strata_buf_put(b, "0", 1);
        strata_buf_put(b, digits, (size_t)nd);
        return;
    }
    for (int i = 0; i <= exp; i++) strata_buf_put(b, i < nd ? &digits[i] : "0", 1);
    if (nd > exp + 1) {
        strata_buf_put(b, ".", 1);
        strata_buf_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
    }
}

/* model.Duration's String(): y and w only when they divide it exactly. */
static void put_duration(strata_buf_t *b, int64_t ms)
{
    if (ms == 0) {
        strata_buf_puts(b, "0s");
        return;
    }
    static const struct {
        const char *unit;
        int64_t mult;
        int exact;
    } units[] = {
        { "y", 1000LL * 60 * 60 * 24 * 365, 1 },
        { "w", 1000LL * 60 * 60 * 24 * 7, 1 },
        { "d", 1000LL * 60 * 60 * 24, 0 },
        { "h", 1000LL * 60 * 60, 0 },
        { "m", 1000LL * 60, 0 },
        { "s", 1000, 0 },
        { "ms", 1, 0 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].exact && ms % units[i].mult != 0) continue;
        int64_t v = ms / units[i].mult;
        if (v > 0) {
            strata_buf_printf(b, "%lld%s", (long long)v, units[i].unit);
            ms -= v * units[i].mult;
        }
    }
}

static void put_offset_at(strata_buf_t *b, promql_at_t at, int64_t at_ms, int64_t offset_ms)
{
    if (at == PROMQL_AT_TIME)
        strata_buf_printf(b, " @ %.3f", (double)at_ms / 1000.0);
    else if (at == PROMQL_AT_START)
        strata_buf_puts(b, " @ start()");
    else if (at == PROMQL_AT_END)
        strata_buf_puts(b, " @ end()");
    if (offset_ms > 0) {
        strata_buf_puts(b, " offset ");
        put_duration(b, offset_ms);
    } else if (offset_ms < 0) {
        strata_buf_puts(b, " offset -");
        put_duration(b, -offset_ms);
    }
}

static void put_labels(strata_buf_t *b, const promql_labels_t *l)
{
    strata_buf_put(b, "(", 1);
    for (size_t i = 0; i < l->n; i++) {
        if (i) strata_buf_puts(b, ", ");
        strata_buf_puts(b, l->names[i]);
    }
    strata_buf_put(b, ")", 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_node(strata_buf_t *b, const promql_node_t *n, strata_arena_t *arena, int after_sign);

/* The selector without its modifiers: name{sorted matchers}. */
static void put_selector(strata_buf_t *b, const promql_node_t *n, strata_arena_t *arena)
{
    static const char *const ops[] = {
        [TSDB_MATCH_EQ] = "=", [TSDB_MATCH_NEQ] = "!=", [TSDB_MATCH_RE] = "=~", [TSDB_MATCH_NRE] = "!~"
    };
    const char *name = n->u.sel.name;
    size_t nm = n->u.sel.nmatchers, k = 0;
    char **strs = strata_arena_alloc(arena, (nm ? nm : 1) * sizeof *strs);
    if (!strs) {
        b->failed = 1;
        return;
    }
    for (size_t i = 0; i < nm; i++) {
        const promql_matcher_t *m = &n->u.sel.matchers[i];
        /* the name's own matcher goes outside the braces */
        if (name && m->type == TSDB_MATCH_EQ && !strcmp(m->name, "__name__") && !strcmp(m->value, name))
            continue;
        strata_buf_t one;
        strata_buf_init(&one, arena, 32);
        strata_buf_puts(&one, m->name);
        strata_buf_puts(&one, (unsigned)m->type < 4 ? ops[m->type] : "=");
        promql_go_quote(&one, m->value, strlen(m->value), 0);
        if (one.failed || !one.data) {
            b->failed = 1;
            return;
        }
        strs[k++] = one.data;
    }
    qsort(strs, k, sizeof *strs, cmp_str);
    if (name) strata_buf_puts(b, name);
    if (k) {
        strata_buf_put(b, "{", 1);
        for (size_t i = 0; i < k; i++) {
            if (i) strata_buf_put(b, ",", 1);
            strata_buf_puts(b, strs[i]);
        }
        strata_buf_put(b, "}", 1);
    }
}

/* after_sign: the text goes right after a unary operator (put_number). */
static void put_node(strata_buf_t *b, const promql_node_t *n, strata_arena_t *arena, int after_sign)
{
    switch (n->kind) {
    case PROMQL_NUMBER: put_number(b, n->u.number, after_sign); break;
    case PROMQL_STRING_LIT: promql_go_quote(b, n->u.string, strlen(n->u.string), 0); break;
    case PROMQL_VECTOR_SEL:
        put_selector(b, n, arena);
        put_offset_at(b, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms);
        break;
    case PROMQL_MATRIX_SEL: {
        const promql_node_t *v = n->u.matrix.vector;
        if (v->kind == PROMQL_VECTOR_SEL)
            put_selector(b, v, arena);
        else
            put_node(b, v, arena, after_sign);
        strata_buf_put(b, "[", 1);
        put_duration(b, n->u.matrix.range_ms);
        strata_buf_put(b, "]", 1);
        if (v->kind == PROMQL_VECTOR_SEL) put_offset_at(b, v->u.sel.at, v->u.sel.at_ms, v->u.sel.offset_ms);
        break;
    }
    case PROMQL_SUBQUERY:
        put_node(b, n->u.subquery.expr, arena, after_sign);
        strata_buf_put(b, "[", 1);
        put_duration(b, n->u.subquery.range_ms);
        strata_buf_put(b, ":", 1);
        if (n->u.subquery.step_ms) put_duration(b, n->u.subquery.step_ms);
        strata_buf_put(b, "]", 1);
        put_offset_at(b, n->u.subquery.at, n->u.subquery.at_ms, n->u.subquery.offset_ms);
        break;
    case PROMQL_PAREN:
        strata_buf_put(b, "(", 1);
        put_node(b, n->u.unary.expr, arena, 0);
        strata_buf_put(b, ")", 1);
        break;
    case PROMQL_UNARY:
        strata_buf_put(b, n->u.unary.negate ? "-" : "+", 1);
        put_node(b, n->u.unary.expr, arena, 1);
        break;
    case PROMQL_BINARY:
        /* +Inf leading the left side of ^ would read back as a unary + over
         * the whole power, so it is printed bare there too */
        put_node(b, n->u.binary.lhs, arena, after_sign || n->u.binary.op == PROMQL_OP_POW);
        strata_buf_put(b, " ", 1);
        strata_buf_puts(b, promql_binop_name(n->u.binary.op));
        if (n->u.binary.return_bool) strata_buf_puts(b, " bool");
        /* Prometheus prints the matching when it has labels or is on();
         * a group_left after an empty ignoring() is printed too, so that
         * the tree survives the round trip */
        if (n->u.binary.on || n->u.binary.matching.n > 0 || n->u.binary.card == PROMQL_CARD_MANY_TO_ONE ||
            n->u.binary.card == PROMQL_CARD_ONE_TO_MANY) {
            strata_buf_puts(b, n->u.binary.on ? " on " : " ignoring ");
            put_labels(b, &n->u.binary.matching);
            if (n->u.binary.card == PROMQL_CARD_MANY_TO_ONE || n->u.binary.card == PROMQL_CARD_ONE_TO_MANY) {
                strata_buf_puts(b, n->u.binary.card == PROMQL_CARD_MANY_TO_ONE ? " group_left "
                                                                               : " group_right ");
                put_labels(b, &n->u.binary.include);
            }
        }
        strata_buf_put(b, " ", 1);
        put_node(b, n->u.binary.rhs, arena, 0);
        break;
    case PROMQL_AGGREGATE:
        strata_buf_puts(b, promql_aggop_name(n->u.agg.op));
        if (n->u.agg.without) {
            strata_buf_puts(b, " without ");
            put_labels(b, &n->u.agg.grouping);
            strata_buf_put(b, " ", 1);
        } else if (n->u.agg.grouping.n > 0) {
            strata_buf_puts(b, " by ");
            put_labels(b, &n->u.agg.grouping);
            strata_buf_put(b, " ", 1);
        }
        strata_buf_put(b, "(", 1);
        if (n->u.agg.param) {
            put_node(b, n->u.agg.param, arena, 0);
            strata_buf_puts(b, ", ");
        }
        if (n->u.agg.expr) put_node(b, n->u.agg.expr, arena, 0);
        strata_buf_put(b, ")", 1);
        break;
    case PROMQL_CALL:
        strata_buf_puts(b, n->u.call.func ? n->u.call.func->name : "?");
        strata_buf_put(b, "(", 1);
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (i) strata_buf_puts(b, ", ");
            put_node(b, n->u.call.args[i], arena, 0);
        }
        strata_buf_put(b, ")", 1);
        break;
    }
}

char *promql_print(const promql_node_t *node, strata_arena_t *arena)
{
    strata_buf_t b;
    strata_buf_init(&b, arena, 128);
    if (node) put_node(&b, node, arena, 0);
    if (b.failed) return NULL;
    if (!b.data) return strata_arena_strdup(arena, "");
    return b.data;
}
