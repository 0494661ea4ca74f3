/*
 * test_promql_parse.c: the PromQL parser and printer (api/promql/lexer.c,
 * parser.c, printer.c, functions.c): every construct's tree checked node by
 * node, the canonical print of each (the expected strings are what
 * Prometheus 2.42's /api/v1/format_query answered for the same queries),
 * print as a fixed point, and the parse errors, text and position, exactly
 * as Prometheus 2.42's /api/v1/query gave them.
 */
#include "test_helpers.h"

#include <math.h>

#include "promql_internal.h"
#include "strata_arena.h"

static int setup(void **state)
{
    *state = strata_arena_new(0);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    strata_arena_free(*state);
    return 0;
}

static promql_node_t *parse_ok(strata_arena_t *arena, const char *q)
{
    promql_node_t *n = NULL;
    promql_error_t err;
    int rc = promql_parse(q, arena, &n, &err);
    if (rc != 0) fail_msg("parse of %s: %d %s", q, rc, err.msg);
    assert_non_null(n);
    return n;
}

/* A matcher of a selector by index. */
static void assert_matcher(const promql_node_t *sel, size_t i, const char *name, int type, const char *value)
{
    assert_true(i < sel->u.sel.nmatchers);
    assert_string_equal(sel->u.sel.matchers[i].name, name);
    assert_int_equal(sel->u.sel.matchers[i].type, type);
    assert_string_equal(sel->u.sel.matchers[i].value, value);
}

static void test_selectors(void **state)
{
    strata_arena_t *arena = *state;
    promql_node_t *n = parse_ok(arena, "foo");
    assert_int_equal(n->kind, PROMQL_VECTOR_SEL);
    assert_int_equal(n->type, PROMQL_TYPE_VECTOR);
    assert_int_equal(promql_node_type(n), PROMQL_TYPE_VECTOR);
    assert_string_equal(n->u.sel.name, "foo");
    assert_int_equal(n->u.sel.nmatchers, 1);
    assert_matcher(n, 0, "__name__", TSDB_MATCH_EQ, "foo");
    assert_int_equal(n->u.sel.offset_ms, 0);
    assert_int_equal(n->u.sel.at, PROMQL_AT_NONE);

    /* the name's matcher comes last, after the braces' in written order */
    n = parse_ok(arena, "node:cpu:rate{b!=\"x\", a=~'y.*' ,c!~`z\\d`, d=\"q\\\"\\n\\u00e9\\x41\\101\",}");
    assert_string_equal(n->u.sel.name, "node:cpu:rate");
    assert_int_equal(n->u.sel.nmatchers, 5);
    assert_matcher(n, 0, "b", TSDB_MATCH_NEQ, "x");
    assert_matcher(n, 1, "a", TSDB_MATCH_RE, "y.*");
    assert_matcher(n, 2, "c", TSDB_MATCH_NRE, "z\\d");
    assert_matcher(n, 3, "d", TSDB_MATCH_EQ,
                   "q\"\n\xc3\xa9"
                   "AA");
    assert_matcher(n, 4, "__name__", TSDB_MATCH_EQ, "node:cpu:rate");
    assert_int_equal(n->pos_start, 0);

    n = parse_ok(arena, "{__name__=~\"a|b\", job=\"x\"}");
    assert_null(n->u.sel.name);
    assert_int_equal(n->u.sel.nmatchers, 2);
    assert_matcher(n, 0, "__name__", TSDB_MATCH_RE, "a|b");

    /* keywords are metric names where an expression starts */
    n = parse_ok(arena, "sum");
    assert_int_equal(n->kind, PROMQL_VECTOR_SEL);
    assert_string_equal(n->u.sel.name, "sum");
    n = parse_ok(arena, "foo + by");
    assert_string_equal(n->u.binary.rhs->u.sel.name, "by");
    /* inside braces keywords are plain label names */
    n = parse_ok(arena, "foo{by=\"1\",offset=\"2\"}");
    assert_matcher(n, 0, "by", TSDB_MATCH_EQ, "1");
    assert_matcher(n, 1, "offset", TSDB_MATCH_EQ, "2");
}

static void test_modifiers(void **state)
{
    strata_arena_t *arena = *state;
    promql_node_t *n = parse_ok(arena, "foo offset 5m");
    assert_int_equal(n->u.sel.offset_ms, 300000);
    n = parse_ok(arena, "foo offset -1h30m");
    assert_int_equal(n->u.sel.offset_ms, -5400000);
    n = parse_ok(arena, "foo @ 1.5 offset 1m");
    assert_int_equal(n->u.sel.at, PROMQL_AT_TIME);
    assert_int_equal(n->u.sel.at_ms, 1500);
    assert_int_equal(n->u.sel.offset_ms, 60000);
    n = parse_ok(arena, "foo OFFSET 1m @ -2");
    assert_int_equal(n->u.sel.at_ms, -2000);
    assert_int_equal(n->u.sel.offset_ms, 60000);
    n = parse_ok(arena, "foo @ start()");
    assert_int_equal(n->u.sel.at, PROMQL_AT_START);
    n = parse_ok(arena, "foo @ end()");
    assert_int_equal(n->u.sel.at, PROMQL_AT_END);

    n = parse_ok(arena, "rate(foo[1y2w3d4h5m6s7ms] offset 1d @ 100)");
    assert_int_equal(n->kind, PROMQL_CALL);
    promql_node_t *m = n->u.call.args[0];
    assert_int_equal(m->kind, PROMQL_MATRIX_SEL);
    assert_int_equal(m->type, PROMQL_TYPE_MATRIX);
    assert_int_equal(m->u.matrix.range_ms, 365LL * 86400000 + 14LL * 86400000 + 3LL * 86400000 + 4 * 3600000 +
                                               5 * 60000 + 6000 + 7);
    /* offset and @ of a range selector live on its vector selector */
    assert_int_equal(m->u.matrix.vector->kind, PROMQL_VECTOR_SEL);
    assert_int_equal(m->u.matrix.vector->u.sel.offset_ms, 86400000);
    assert_int_equal(m->u.matrix.vector->u.sel.at_ms, 100000);

    n = parse_ok(arena, "foo[292y]");
    assert_int_equal(n->u.matrix.range_ms, 292LL * 365 * 86400000);
    n = parse_ok(arena, "foo[0d1h0m]");
    assert_int_equal(n->u.matrix.range_ms, 3600000);

    n = parse_ok(arena, "max_over_time(rate(foo[5m])[1h:5m] offset -1m @ end())");
    promql_node_t *s = n->u.call.args[0];
    assert_int_equal(s->kind, PROMQL_SUBQUERY);
    assert_int_equal(s->type, PROMQL_TYPE_MATRIX);
    assert_int_equal(s->u.subquery.range_ms, 3600000);
    assert_int_equal(s->u.subquery.step_ms, 300000);
    assert_int_equal(s->u.subquery.offset_ms, -60000);
    assert_int_equal(s->u.subquery.at, PROMQL_AT_END);
    assert_int_equal(s->u.subquery.expr->kind, PROMQL_CALL);
    n = parse_ok(arena, "(foo)[1h:]");
    assert_int_equal(n->kind, PROMQL_SUBQUERY);
    assert_int_equal(n->u.subquery.step_ms, 0);
    assert_int_equal(n->u.subquery.expr->kind, PROMQL_PAREN);
}

static void test_literals(void **state)
{
    strata_arena_t *arena = *state;
    static const struct {
        const char *q;
        double v;
    } nums[] = {
        { "1", 1 },        { "1.5", 1.5 },     { ".5", 0.5 },  { "5.", 5 },      { "1e3", 1000 },
        { "1E-3", 0.001 }, { "0x1F", 31 },     { "0X1f", 31 }, { "017", 15 },    { "08", 8 },
        { "-2", -2 },      { "+2", 2 },        { "- -2", 2 },  { "-0x10", -16 }, { "1e+3", 1000 },
        { "0", 0 },        { "1e308", 1e308 },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        promql_node_t *n = parse_ok(arena, nums[i].q);
        assert_int_equal(n->kind, PROMQL_NUMBER);
        assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
        if (n->u.number != nums[i].v) fail_msg("%s: %g, want %g", nums[i].q, n->u.number, nums[i].v);
    }
    promql_node_t *n = parse_ok(arena, "Inf");
    assert_true(isinf(n->u.number) && n->u.number > 0);
    n = parse_ok(arena, "-iNF");
    assert_true(isinf(n->u.number) && n->u.number < 0);
    n = parse_ok(arena, "nan");
    assert_true(isnan(n->u.number));
    /* a signed literal is folded into the number, its range starts at the sign */
    n = parse_ok(arena, " -5");
    assert_int_equal(n->pos_start, 1);
    /* but a parenthesized one stays a unary expression */
    n = parse_ok(arena, "-(5)");
    assert_int_equal(n->kind, PROMQL_UNARY);
    assert_int_equal(n->u.unary.negate, 1);
    assert_int_equal(n->u.unary.expr->kind, PROMQL_PAREN);

    n = parse_ok(arena, "\"a\\tb\\\\c'\"");
    assert_int_equal(n->kind, PROMQL_STRING_LIT);
    assert_int_equal(n->type, PROMQL_TYPE_STRING);
    assert_string_equal(n->u.string, "a\tb\\c'");
    n = parse_ok(arena, "'it\\'s \"x\"'");
    assert_string_equal(n->u.string, "it's \"x\"");
    n = parse_ok(arena, "`raw \\n \"`");
    assert_string_equal(n->u.string, "raw \\n \"");
    n = parse_ok(arena, "\"\\U0001F600\\a\\b\\f\\r\\v\"");
    assert_string_equal(n->u.string, "\xf0\x9f\x98\x80\a\b\f\r\v");
}

static void test_binary(void **state)
{
    strata_arena_t *arena = *state;
    /* 1 + 2 * 3 ^ 2 ^ 2 > 4 and foo or bar */
    promql_node_t *n = parse_ok(arena, "a + b * c ^ d ^ e > bool f and g or h unless i");
    assert_int_equal(n->kind, PROMQL_BINARY);
    assert_int_equal(n->u.binary.op, PROMQL_OP_OR);
    assert_int_equal(n->u.binary.card, PROMQL_CARD_MANY_TO_MANY);
    promql_node_t *unless = n->u.binary.rhs;
    assert_int_equal(unless->u.binary.op, PROMQL_OP_UNLESS);
    promql_node_t *and = n->u.binary.lhs;
    assert_int_equal(and->u.binary.op, PROMQL_OP_AND);
    promql_node_t *gt = and->u.binary.lhs;
    assert_int_equal(gt->u.binary.op, PROMQL_OP_GTR);
    assert_int_equal(gt->u.binary.return_bool, 1);
    promql_node_t *add = gt->u.binary.lhs;
    assert_int_equal(add->u.binary.op, PROMQL_OP_ADD);
    promql_node_t *mul = add->u.binary.rhs;
    assert_int_equal(mul->u.binary.op, PROMQL_OP_MUL);
    promql_node_t *pow = mul->u.binary.rhs;
    assert_int_equal(pow->u.binary.op, PROMQL_OP_POW);
    /* ^ is right-associative */
    assert_int_equal(pow->u.binary.lhs->kind, PROMQL_VECTOR_SEL);
    assert_int_equal(pow->u.binary.rhs->u.binary.op, PROMQL_OP_POW);

    /* left-associative - and / */
    n = parse_ok(arena, "a - b - c");
    assert_int_equal(n->u.binary.lhs->kind, PROMQL_BINARY);
    n = parse_ok(arena, "a / b % c atan2 d");
    assert_int_equal(n->u.binary.op, PROMQL_OP_ATAN2);
    assert_int_equal(n->u.binary.lhs->u.binary.op, PROMQL_OP_MOD);

    /* unary minus binds like *, so -a ^ b is -(a ^ b) and -a * b is (-a) * b */
    n = parse_ok(arena, "-a ^ b");
    assert_int_equal(n->kind, PROMQL_UNARY);
    assert_int_equal(n->u.unary.expr->u.binary.op, PROMQL_OP_POW);
    n = parse_ok(arena, "-a * b");
    assert_int_equal(n->kind, PROMQL_BINARY);
    assert_int_equal(n->u.binary.lhs->kind, PROMQL_UNARY);

    n = parse_ok(arena, "a * on(x, y) group_left(z) b");
    assert_int_equal(n->u.binary.on, 1);
    assert_int_equal(n->u.binary.card, PROMQL_CARD_MANY_TO_ONE);
    assert_int_equal(n->u.binary.matching.n, 2);
    assert_string_equal(n->u.binary.matching.names[0], "x");
    assert_string_equal(n->u.binary.matching.names[1], "y");
    assert_int_equal(n->u.binary.include.n, 1);
    assert_string_equal(n->u.binary.include.names[0], "z");
    n = parse_ok(arena, "a - IGNORING(x) GROUP_RIGHT b");
    assert_int_equal(n->u.binary.on, 0);
    assert_int_equal(n->u.binary.card, PROMQL_CARD_ONE_TO_MANY);
    assert_int_equal(n->u.binary.include.n, 0);
    n = parse_ok(arena, "a == bool on() b");
    assert_int_equal(n->u.binary.op, PROMQL_OP_EQL);
    assert_int_equal(n->u.binary.return_bool, 1);
    assert_int_equal(n->u.binary.on, 1);
    assert_int_equal(n->u.binary.matching.n, 0);

    /* types: scalar op scalar is a scalar, with a vector a vector */
    n = parse_ok(arena, "1 + time()");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    assert_int_equal(n->u.binary.card, PROMQL_CARD_ONE_TO_ONE);
    n = parse_ok(arena, "1 < bool 2");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    n = parse_ok(arena, "foo / 2");
    assert_int_equal(n->type, PROMQL_TYPE_VECTOR);
    assert_int_equal(n->u.binary.card, PROMQL_CARD_ONE_TO_ONE);
    n = parse_ok(arena, "foo != -1");
    assert_int_equal(n->u.binary.op, PROMQL_OP_NEQ);
    n = parse_ok(arena, "a <= b >= c < d == e");
    assert_int_equal(n->u.binary.op, PROMQL_OP_EQL);
    assert_int_equal(n->u.binary.lhs->u.binary.op, PROMQL_OP_LSS);
}

static void test_aggregations(void **state)
{
    strata_arena_t *arena = *state;
    static const struct {
        const char *q;
        promql_aggop_t op;
        int param;
    } aggs[] = {
        { "sum(x)", PROMQL_AGG_SUM, 0 },
        { "avg(x)", PROMQL_AGG_AVG, 0 },
        { "min(x)", PROMQL_AGG_MIN, 0 },
        { "max(x)", PROMQL_AGG_MAX, 0 },
        { "count(x)", PROMQL_AGG_COUNT, 0 },
        { "group(x)", PROMQL_AGG_GROUP, 0 },
        { "stddev(x)", PROMQL_AGG_STDDEV, 0 },
        { "stdvar(x)", PROMQL_AGG_STDVAR, 0 },
        { "topk(3, x)", PROMQL_AGG_TOPK, 1 },
        { "bottomk(3, x)", PROMQL_AGG_BOTTOMK, 1 },
        { "quantile(0.5, x)", PROMQL_AGG_QUANTILE, 1 },
        { "count_values(\"v\", x)", PROMQL_AGG_COUNT_VALUES, 1 },
        { "limitk(2, x)", PROMQL_AGG_LIMITK, 1 },
        { "limit_ratio(0.5, x)", PROMQL_AGG_LIMIT_RATIO, 1 },
    };
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++) {
        promql_node_t *n = parse_ok(arena, aggs[i].q);
        assert_int_equal(n->kind, PROMQL_AGGREGATE);
        assert_int_equal(n->type, PROMQL_TYPE_VECTOR);
        assert_int_equal(n->u.agg.op, aggs[i].op);
        assert_int_equal(n->u.agg.param != NULL, aggs[i].param);
        assert_string_equal(n->u.agg.expr->u.sel.name, "x");
        char *s = promql_print(n, arena);
        assert_string_equal(s, aggs[i].q);
    }
    promql_node_t *n = parse_ok(arena, "sum by (a, b) (x)");
    assert_int_equal(n->u.agg.without, 0);
    assert_int_equal(n->u.agg.grouping.n, 2);
    assert_string_equal(n->u.agg.grouping.names[1], "b");
    n = parse_ok(arena, "SUM(x) WITHOUT (sum, on, bool,)");
    assert_int_equal(n->u.agg.without, 1);
    assert_int_equal(n->u.agg.grouping.n, 3);
    assert_string_equal(n->u.agg.grouping.names[0], "sum");
    assert_string_equal(n->u.agg.grouping.names[2], "bool");
    n = parse_ok(arena, "topk by (a) (5, x)");
    assert_int_equal(n->u.agg.param->kind, PROMQL_NUMBER);
    assert_true(n->u.agg.param->u.number == 5);
    n = parse_ok(arena, "count_values without () ('v', x)");
    assert_int_equal(n->u.agg.param->kind, PROMQL_STRING_LIT);
    assert_string_equal(n->u.agg.param->u.string, "v");
    assert_int_equal(n->u.agg.without, 1);
    assert_int_equal(n->u.agg.grouping.n, 0);
}

static void test_calls(void **state)
{
    strata_arena_t *arena = *state;
    promql_node_t *n = parse_ok(arena, "label_join(foo, \"d\", \",\", \"a\", \"b\", \"c\")");
    assert_int_equal(n->kind, PROMQL_CALL);
    assert_string_equal(n->u.call.func->name, "label_join");
    assert_int_equal(n->u.call.nargs, 6);
    assert_string_equal(n->u.call.args[5]->u.string, "c");
    n = parse_ok(arena, "time()");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    assert_int_equal(n->u.call.nargs, 0);
    n = parse_ok(arena, "scalar(foo)");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    n = parse_ok(arena, "hour()");
    assert_int_equal(n->u.call.nargs, 0);
    n = parse_ok(arena, "round(foo, 10)");
    assert_int_equal(n->u.call.nargs, 2);
    n = parse_ok(arena, "sort_by_label_desc(foo, \"a\", \"b\")");
    assert_int_equal(n->u.call.nargs, 3);

    /* the table: every documented float function, with its shape */
    static const struct {
        const char *name;
        int min, max;
        promql_type_t ret;
    } fns[] = {
        { "abs", 1, 1, PROMQL_TYPE_VECTOR },
        { "absent_over_time", 1, 1, PROMQL_TYPE_VECTOR },
        { "clamp", 3, 3, PROMQL_TYPE_VECTOR },
        { "day_of_week", 0, 1, PROMQL_TYPE_VECTOR },
        { "double_exponential_smoothing", 3, 3, PROMQL_TYPE_VECTOR },
        { "histogram_quantile", 2, 2, PROMQL_TYPE_VECTOR },
        { "label_join", 3, -1, PROMQL_TYPE_VECTOR },
        { "label_replace", 5, 5, PROMQL_TYPE_VECTOR },
        { "mad_over_time", 1, 1, PROMQL_TYPE_VECTOR },
        { "pi", 0, 0, PROMQL_TYPE_SCALAR },
        { "quantile_over_time", 2, 2, PROMQL_TYPE_VECTOR },
        { "round", 1, 2, PROMQL_TYPE_VECTOR },
        { "sort_by_label", 1, -1, PROMQL_TYPE_VECTOR },
        { "year", 0, 1, PROMQL_TYPE_VECTOR },
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        const promql_function_t *f = promql_function_lookup(fns[i].name, strlen(fns[i].name));
        assert_non_null(f);
        assert_string_equal(f->name, fns[i].name);
        assert_int_equal(f->nargs_min, fns[i].min);
        assert_int_equal(f->nargs_max, fns[i].max);
        assert_int_equal(f->return_type, fns[i].ret);
    }
    static const char *const all[] = {
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "double_exponential_smoothing",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "mad_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_by_label",
        "sort_by_label_desc",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const promql_function_t *f = promql_function_lookup(all[i], strlen(all[i]));
        if (!f) fail_msg("%s missing", all[i]);
        assert_string_equal(f->name, all[i]);
    }
    assert_null(promql_function_lookup("rat", 3));
    assert_null(promql_function_lookup("rates", 5));
    assert_null(promql_function_lookup("RATE", 4));
    assert_non_null(promql_function_lookup("rate(x)", 4));

    assert_string_equal(promql_aggop_name(PROMQL_AGG_COUNT_VALUES), "count_values");
    assert_string_equal(promql_binop_name(PROMQL_OP_UNLESS), "unless");
    assert_string_equal(promql_binop_name(PROMQL_OP_GTE), ">=");
    assert_string_equal(promql_type_name(PROMQL_TYPE_MATRIX), "matrix");
    assert_string_equal(promql_type_name(PROMQL_TYPE_SCALAR), "scalar");
    assert_string_equal(promql_type_name(PROMQL_TYPE_VECTOR), "vector");
    assert_string_equal(promql_type_name(PROMQL_TYPE_STRING), "string");
}

/* Query -> Prometheus 2.42's canonical form (/api/v1/format_query). */
static const struct {
    const char *q, *want;
} round_trips[] = {
    { "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))", "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))" },
    { "rate(foo{a=\"b\"}[5m] offset 1m) ", "rate(foo{a=\"b\"}[5m] offset 1m)" },
    { "sum(rate(foo[5m])) by (job)", "sum by (job) (rate(foo[5m]))" },
    { "foo + on(x) group_left(y) bar", "foo + on (x) group_left (y) bar" },
    { "foo + ignoring(a, b) group_right bar", "foo + ignoring (a, b) group_right () bar" },
    { "a and on() b", "a and on () b" },
    { "a or b unless c", "a or b unless c" },
    { "-foo ^ 2", "-foo ^ 2" },
    { "-foo * 2", "-foo * 2" },
    { "2 ^ 3 ^ 2", "2 ^ 3 ^ 2" },
    { "(2 ^ 3) ^ 2", "(2 ^ 3) ^ 2" },
    { "1 + 2 * 3 - 4 / 5 % 6", "1 + 2 * 3 - 4 / 5 % 6" },
    { "foo > bool 1", "foo > bool 1" },
    { "foo atan2 bar", "foo atan2 bar" },
    { "topk(3, foo)", "topk(3, foo)" },
    { "quantile(0.9, foo) without (a)", "quantile without (a) (0.9, foo)" },
    { "count_values(\"v\", foo)", "count_values(\"v\", foo)" },
    { "foo[5m:1m] offset 1m @ 100", "foo[5m:1m] @ 100.000 offset 1m" },
    { "foo @ 1.5 offset -5m", "foo @ 1.500 offset -5m" },
    { "foo offset 1h30m", "foo offset 1h30m" },
    { "foo[90d]", "foo[90d]" },
    { "foo[1w]", "foo[1w]" },
    { "foo[2y]", "foo[2y]" },
    { "foo[14d]", "foo[2w]" },
    { "foo[1h1ms]", "foo[1h1ms]" },
    { "1e6", "1e+06" },
    { "123456", "123456" },
    { "0.0001", "0.0001" },
    { "0.00001", "1e-05" },
    { "1e-7", "1e-07" },
    { "1234567.5", "1.2345675e+06" },
    { "0x1F", "31" },
    { "017", "15" },
    { "-Inf", "-Inf" },
    { "NaN", "NaN" },
    { "+5", "5" },
    { "\"a\\nb\\\"c\"", "\"a\\nb\\\"c\"" },
    { "'single'", "\"single\"" },
    { "`raw\\n`", "\"raw\\\\n\"" },
    { "{__name__=\"foo\", a!~\"x\"}", "{__name__=\"foo\",a!~\"x\"}" },
    { "{__name__=~\"foo|bar\"}", "{__name__=~\"foo|bar\"}" },
    { "foo{b=\"1\", a=\"2\", c=~\"3\"}", "foo{a=\"2\",b=\"1\",c=~\"3\"}" },
    { "label_replace(foo, \"dst\", \"$1\", \"src\", \"(.*)\")",
      "label_replace(foo, \"dst\", \"$1\", \"src\", \"(.*)\")" },
    { "label_join(foo, \"d\", \",\", \"a\", \"b\", \"c\")",
      "label_join(foo, \"d\", \",\", \"a\", \"b\", \"c\")" },
    { "round(foo)", "round(foo)" },
    { "round(foo, 0.5)", "round(foo, 0.5)" },
    { "hour()", "hour()" },
    { "time()", "time()" },
    { "vector(1)", "vector(1)" },
    { "scalar(foo)", "scalar(foo)" },
    { "histogram_quantile(0.9, sum by (le) (rate(foo_bucket[5m])))",
      "histogram_quantile(0.9, sum by (le) (rate(foo_bucket[5m])))" },
    { "max_over_time(rate(foo[5m])[1h:])", "max_over_time(rate(foo[5m])[1h:])" },
    { "predict_linear(foo[1h], 3600)", "predict_linear(foo[1h], 3600)" },
    { "holt_winters(foo[1h], 0.5, 0.5)", "holt_winters(foo[1h], 0.5, 0.5)" },
    { "absent(nonexistent{job=\"x\"})", "absent(nonexistent{job=\"x\"})" },
    { "sum without () (foo)", "sum without () (foo)" },
    { "foo == bool on(a) bar", "foo == bool on (a) bar" },
    { "foo @ end()", "foo @ end()" },
    { "rate(foo[5m] @ start())", "rate(foo[5m] @ start())" },
    { "(foo)[5m:]", "(foo)[5m:]" },
    { "- - foo", "--foo" },
    { "-(1)", "-(1)" },
    { "foo # comment", "foo" },
};

static void test_print(void **state)
{
    strata_arena_t *arena = *state;
    for (size_t i = 0; i < sizeof round_trips / sizeof round_trips[0]; i++) {
        promql_node_t *n = parse_ok(arena, round_trips[i].q);
        char *s = promql_print(n, arena);
        assert_non_null(s);
        if (strcmp(s, round_trips[i].want))
            fail_msg("print of %s: %s, want %s", round_trips[i].q, s, round_trips[i].want);
        /* a fixed point: the canonical form parses to a tree printing the same */
        promql_node_t *n2 = parse_ok(arena, s);
        assert_int_equal(n2->kind, n->kind);
        assert_int_equal(n2->type, n->type);
        assert_string_equal(promql_print(n2, arena), s);
    }
}

/* Where strata's print departs from Prometheus' to stay a fixed point
 * (docs/promql.md, "Parser"): +Inf that would read back as a unary +, and
 * an empty ignoring() that carries a group modifier. */
static void test_print_corners(void **state)
{
    strata_arena_t *arena = *state;
    static const struct {
        const char *q, *want;
        promql_node_kind_t kind;
    } cases[] = {
        { "inf ^ foo", "Inf ^ foo", PROMQL_BINARY },
        { "a * inf ^ 2", "a * Inf ^ 2", PROMQL_BINARY },
        { "- +inf ^ 2", "-+Inf ^ 2", PROMQL_UNARY },
        { "-inf ^ 2", "-Inf ^ 2", PROMQL_UNARY },
        { "inf + inf", "+Inf + +Inf", PROMQL_BINARY },
        { "x + ignoring() group_left y", "x + ignoring () group_left () y", PROMQL_BINARY },
        { "-0", "-0", PROMQL_NUMBER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        promql_node_t *n = parse_ok(arena, cases[i].q);
        assert_int_equal(n->kind, cases[i].kind);
        char *s = promql_print(n, arena);
        assert_string_equal(s, cases[i].want);
        promql_node_t *n2 = parse_ok(arena, s);
        assert_int_equal(n2->kind, cases[i].kind);
        assert_string_equal(promql_print(n2, arena), s);
    }
    promql_node_t *n = parse_ok(arena, "x + ignoring() group_left y");
    assert_int_equal(n->u.binary.card, PROMQL_CARD_MANY_TO_ONE);
    n = parse_ok(arena, promql_print(n, arena));
    assert_int_equal(n->u.binary.card, PROMQL_CARD_MANY_TO_ONE);
}

/* Bad queries and the message Prometheus 2.42 answered for each. */
static const struct {
    const char *q, *msg;
} errors[] = {
    { "sum(", "1:5: parse error: unclosed left parenthesis" },
    { "foo{", "1:5: parse error: unexpected end of input inside braces" },
    { "foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces" },
    { "foo{a=}", "1:7: parse error: unexpected \"}\" in label matching, expected string" },
    { "foo{a}", "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator" },
    { "foo{=\"b\"}", "1:5: parse error: unexpected \"=\" in label matching, expected identifier or \"}\"" },
    { "foo[5m", "1:7: parse error: unclosed left bracket" },
    { "foo[]", "1:5: parse error: missing unit character in duration" },
    { "foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'" },
    { "rate(foo)",
      "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector" },
    { "rate(foo[5m], 1)", "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2" },
    { "unknown_fn(foo)", "1:1: parse error: unknown function with name \"unknown_fn\"" },
    { "abs()", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 0" },
    { "abs(foo, bar)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2" },
    { "1 +", "1:4: parse error: unexpected end of input" },
    { "1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
    { "foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
    { "1 and foo", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
    { "foo and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators" },
    { "sum(foo[5m])",
      "1:5: parse error: expected type instant vector in aggregation expression, got range vector" },
    { "topk(foo)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
    { "topk(foo, bar)",
      "1:6: parse error: expected type scalar in aggregation parameter, got instant vector" },
    { "count_values(1, foo)",
      "1:14: parse error: expected type string in aggregation parameter, got scalar" },
    { "quantile(\"a\", foo)",
      "1:10: parse error: expected type scalar in aggregation parameter, got string" },
    { "foo[5m] offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times" },
    { "foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "(foo + bar) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant vector "
                               "selector or range vector selector or a subquery" },
    { "1 offset 5m", "1:1: parse error: offset modifier must be preceded by an instant vector selector or "
                     "range vector selector or a subquery" },
    { "foo[5m][10m]", "1:8: parse error: ranges only allowed for vector selectors" },
    { "foo[5m:][1m]", "1:9: parse error: ranges only allowed for vector selectors" },
    { "rate(foo[5m])[1h:] offset 1m offset 1m", "1:1: parse error: offset may not be set multiple times" },
    { "foo{a=\"b\"}{c=\"d\"}", "1:11: parse error: unexpected \"{\"" },
    { "{}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{a=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"" },
    { "sum by (1) (foo)", "1:9: parse error: unexpected number \"1\" in grouping opts, expected label" },
    { "sum without (foo", "1:17: parse error: unclosed left parenthesis" },
    { "foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp" },
    { "foo @ -", "1:8: parse error: unexpected end of input in @, expected timestamp" },
    { "1 + \"a\"", "1:5: parse error: binary expression must contain only scalar and instant vector types" },
    { "\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types" },
    { "-\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
                "vector, got \"string\"" },
    { "+foo[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
                  "vector, got \"range vector\"" },
    { "foo offset", "1:11: parse error: unexpected end of input in offset, expected duration" },
    { "foo offset 5", "1:12: parse error: unexpected number \"5\" in offset, expected duration" },
    { "foo offset -", "1:13: parse error: unexpected end of input in offset, expected duration" },
    { ")", "1:2: parse error: unexpected right parenthesis ')'" },
    { "]", "1:1: parse error: unexpected right bracket ']'" },
    { "}", "1:1: parse error: unexpected character: '}'" },
    { "foo}", "1:4: parse error: unexpected character: '}'" },
    { "foo bar", "1:5: parse error: unexpected identifier \"bar\"" },
    { "foo 1", "1:5: parse error: unexpected number \"1\"" },
    { "1 2", "1:3: parse error: unexpected number \"2\"" },
    { "@ 1", "1:1: parse error: unexpected \"<Item 57385>\" <op:@>" },
    { ",", "1:1: parse error: unexpected \",\"" },
    { "label_replace(foo, \"a\", \"b\", \"c\")",
      "1:1: parse error: expected 5 argument(s) in call to \"label_replace\", got 4" },
    { "label_join(foo)",
      "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1" },
    { "histogram_quantile(foo, bar)", "1:20: parse error: expected type scalar in call to function "
                                      "\"histogram_quantile\", got instant vector" },
    { "round(foo, bar)",
      "1:12: parse error: expected type scalar in call to function \"round\", got instant vector" },
    { "time(1)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1" },
    { "vector(foo)",
      "1:8: parse error: expected type scalar in call to function \"vector\", got instant vector" },
    { "scalar(1)",
      "1:8: parse error: expected type instant vector in call to function \"scalar\", got scalar" },
    { "absent_over_time(foo)", "1:18: parse error: expected type range vector in call to function "
                               "\"absent_over_time\", got instant vector" },
    { "abs(foo[5m])",
      "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector" },
    { "sum(rate(foo[5m])) by",
      "1:22: parse error: unexpected end of input in grouping opts, expected \"(\"" },
    { "sum(foo) by (a) by (b)", "1:17: parse error: unexpected <by>" },
    { "sum by (a) (foo) without (b)", "1:18: parse error: unexpected <without>" },
    { "avg(foo, bar)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2" },
    { "foo[5m] + 1",
      "1:1: parse error: binary expression must contain only scalar and instant vector types" },
    { "foo{a=\"b\",}{", "1:12: parse error: unexpected \"{\"" },
    { "foo{a!}", "1:6: parse error: unexpected character after '!' inside braces: '}'" },
    { "foo[5x]", "1:5: parse error: bad duration syntax: \"5\"" },
    { "foo[1.5m]", "1:5: parse error: not a valid duration string: \"1.5m\"" },
    { "foo[0s]", "1:5: parse error: duration must be greater than 0" },
    { "foo[5m:0s]", "1:8: parse error: duration must be greater than 0" },
    { "0x", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax" },
    { "1e", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax" },
    { "1..2", "1:3: parse error: unexpected number \".2\"" },
    { "\"unterminated", "1:1: parse error: unterminated quoted string" },
    { "'unterminated", "1:1: parse error: unterminated quoted string" },
    { "`unterminated", "1:1: parse error: unterminated raw string" },
    { "\"\\q\"", "1:1: parse error: unknown escape sequence U+0071 'q'" },
    { "\"\\x4\"", "1:1: parse error: illegal character U+0022 '\"' in escape sequence" },
    { "foo{a=\"\\z\"}", "1:7: parse error: unknown escape sequence U+007A 'z'" },
    { "foo[1m30h]", "1:5: parse error: not a valid duration string: \"1m30h\"" },
    { "foo offset 1m30h", "1:12: parse error: not a valid duration string: \"1m30h\"" },
    { "foo @ end(1)", "1:11: parse error: unexpected number \"1\" in @, expected timestamp" },
    { "foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp" },
    { "holt_winters(foo[5m], 0.5)",
      "1:1: parse error: expected 3 argument(s) in call to \"holt_winters\", got 2" },
    { "foo ! bar", "1:5: parse error: unexpected character after '!': ' '" },
    { "foo =~ bar", "1:5: parse error: unexpected character after '=': '~'" },
    { "sum(foo) bool", "1:10: parse error: unexpected <bool>" },
    { "1 < 2", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
    { "foo or on() 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression" },
    { "1 unless 2", "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression" },
    { "time() and time()", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
    { "foo{\"bar\"}",
      "1:5: parse error: unexpected string \"\\\"bar\\\"\" in label matching, expected identifier or \"}\"" },
    { "{\"foo\", a=\"b\"}",
      "1:2: parse error: unexpected string \"\\\"foo\\\"\" in label matching, expected identifier or \"}\"" },
    { "group_left", "1:1: parse error: unexpected <group_left>" },
    { "on(a)", "1:1: parse error: unexpected <on>" },
    { "bool", "1:1: parse error: unexpected <bool>" },
    { "1 ^ ", "1:5: parse error: unexpected end of input" },
    { "foo + - - ", "1:11: parse error: unexpected end of input" },
    { "(", "1:2: parse error: unclosed left parenthesis" },
    { "()", "1:2: parse error: unexpected \")\"" },
    { "(foo", "1:5: parse error: unclosed left parenthesis" },
    { "foo)", "1:5: parse error: unexpected right parenthesis ')'" },
    { "(((foo)))) ", "1:11: parse error: unexpected right parenthesis ')'" },
    { "foo{a=\"b\" c=\"d\"}",
      "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"" },
    { "foo{a=\"b\",,c=\"d\"}",
      "1:11: parse error: unexpected \",\" in label matching, expected identifier or \"}\"" },
    { "foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\"" },
    { "foo{a==\"b\"}", "1:7: parse error: unexpected \"=\" in label matching, expected string" },
    { "foo{a=!\"b\"}", "1:7: parse error: unexpected character after '!' inside braces: '\"'" },
    { "foo{a:b=\"c\"}", "1:6: parse error: unexpected character inside braces: ':'" },
    { "foo{1=\"c\"}", "1:5: parse error: unexpected character inside braces: '1'" },
    { "rate(foo[5m]) offset 5m offset 1m", "1:1: parse error: offset modifier must be preceded by an instant "
                                           "vector selector or range vector selector or a subquery" },
    { "sum(foo)[5m]", "1:9: parse error: ranges only allowed for vector selectors" },
    { "-foo[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
                  "vector, got \"range vector\"" },
    { "stddev(foo, 1)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2" },
    { "quantile(foo)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
    { "count_values(\"a\", foo, bar)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 3" },
    { "topk(1, foo, bar)",
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 3" },
    { "sum()", "1:1: parse error: no arguments for aggregate expression provided" },
    { "sum(foo,)", "1:8: parse error: trailing commas not allowed in function call args" },
    { "rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args" },
    { "abs(foo,)", "1:8: parse error: trailing commas not allowed in function call args" },
    { "sum(rate(foo x))", "1:14: parse error: unexpected identifier \"x\" in aggregation" },
    { "sum(foo +)", "1:10: parse error: unexpected \")\" in aggregation" },
    { "topk(1 x, foo)", "1:8: parse error: unexpected identifier \"x\" in aggregation" },
    { "sum(, foo)", "1:5: parse error: unexpected \",\" in aggregation" },
    { "rate(foo, ,)", "1:9: parse error: trailing commas not allowed in function call args" },
    { "rate(, foo)", "1:6: parse error: unexpected \",\"" },
    { "label_join(up, \"foo\", \",\", \"a\", ,c\")",
      "1:31: parse error: trailing commas not allowed in function call args" },
    { "sum())", "1:7: parse error: unexpected right parenthesis ')'" },
    { "quantile(9))", "1:13: parse error: unexpected right parenthesis ')'" },
    { "unknown_fn(foo))", "1:1: parse error: unknown function with name \"unknown_fn\"" },
    { "a * ignoring(x, y) group_right ",
      "1:32: parse error: unexpected end of input in grouping opts, expected \"(\"" },
    { "a * on(x) group_left ,", "1:22: parse error: unexpected \",\" in grouping opts, expected \"(\"" },
    { "a * on(x) group_left 1", "1:1: parse error: vector matching only allowed between instant vectors" },
    { "a * on(x) group_left \"a\"",
      "1:22: parse error: binary expression must contain only scalar and instant vector types" },
    { "sum by (without) (x)", "1:9: parse error: unexpected <without> in grouping opts, expected label" },
    { "bby start", "1:5: parse error: unexpected \"start\"" },
    { "e[m_", "1:3: parse error: bad duration syntax: \"m_\"" },
    { "r 0x1FmpNa", "1:3: parse error: bad number or duration syntax: \"0x1Fmp\"" },
    { "foo @ end", "1:10: parse error: unexpected end of input in @, expected timestamp" },
    { "foo and", "1:8: parse error: unexpected end of input" },
    { "foo +\n  bar baz", "2:7: parse error: unexpected identifier \"baz\"" },
    { "sum(\n  rate(foo[5m]\n)", "3:2: parse error: unclosed left parenthesis" },
    { "foo{\n a=\"b\",\n b c}",
      "3:4: parse error: unexpected identifier \"c\" in label matching, expected label matching operator" },
    { "1 +\n\n \"a\"",
      "3:2: parse error: binary expression must contain only scalar and instant vector types" },
    { "\"aaaaaaaaaaaaaaaaaaaa\" 1", "1:24: parse error: unexpected number \"1\"" },
    { "1 \"abcdefghijklmnop\"", "1:3: parse error: unexpected string \"\\\"abcdefghi\"..." },
    { "foo 12345678901234", "1:5: parse error: unexpected number \"1234567890\"..." },
    { "foo \"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"",
      "1:5: parse error: unexpected string \"\\\"\\\\u00e9\\\\u0\"..." },
    { "foo{a=\"b\"}[5m] offset 1m[1m]", "1:25: parse error: ranges only allowed for vector selectors" },
    { "foo[1h:1m] @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "foo @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "(foo) @ 1", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range "
                   "vector selector or a subquery" },
    { "rate(foo[5m]) @ 1", "1:1: parse error: @ modifier must be preceded by an instant vector selector or "
                           "range vector selector or a subquery" },
    { "foo[5m] offset 0s", "1:16: parse error: duration must be greater than 0" },
    { "foo[5m:1m] offset -0s", "1:20: parse error: duration must be greater than 0" },
    { "foo @ -1e19",
      "1:1: parse error: timestamp out of bounds for @ modifier: -10000000000000000000.000000" },
    { "sum(foo) by (a) by (b)", "1:17: parse error: unexpected <by>" },
    { "sum by (a) x", "1:12: parse error: unexpected identifier \"x\" in aggregation" },
    { "sum foo", "1:5: parse error: unexpected identifier \"foo\"" },
    { "sum by", "1:7: parse error: unexpected end of input in grouping opts, expected \"(\"" },
    { "count_values without (a) (\"x\", foo[5m])",
      "1:32: parse error: expected type instant vector in aggregation expression, got range vector" },
    { "quantile(foo[5m], bar)",
      "1:10: parse error: expected type scalar in aggregation parameter, got range vector" },
    { "topk(1, foo) == bool 2 and 1",
      "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
    { "abs(foo[5m:])",
      "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector" },
    { "rate(foo offset 1m)",
      "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector" },
    { "sort(1)", "1:6: parse error: expected type instant vector in call to function \"sort\", got scalar" },
    { "timestamp(\"a\")",
      "1:11: parse error: expected type instant vector in call to function \"timestamp\", got string" },
    { "label_replace(foo, \"a\", \"b\", \"c\", 1)",
      "1:35: parse error: expected type string in call to function \"label_replace\", got scalar" },
    { "clamp(foo, 1)", "1:1: parse error: expected 3 argument(s) in call to \"clamp\", got 2" },
    { "round(foo, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3" },
    { "hour(foo, bar)", "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 2" },
    { "day_of_month(1)",
      "1:14: parse error: expected type instant vector in call to function \"day_of_month\", got scalar" },
    { "vector(\"a\")", "1:8: parse error: expected type scalar in call to function \"vector\", got string" },
    { "foo / on(a) group_left(b) bar * on(c) group_right(c) baz",
      "1:31: parse error: label \"c\" must not occur in ON and GROUP clause at once" },
    { "foo and bool bar", "1:5: parse error: bool modifier can only be used on comparison operators" },
    { "1 > bool on(a) 2", "1:1: parse error: vector matching only allowed between instant vectors" },
    { "foo unless on(a) group_right(b) bar",
      "1:1: parse error: no grouping allowed for \"unless\" operation" },
    { "foo or ignoring(a) group_left bar", "1:1: parse error: no grouping allowed for \"or\" operation" },
    { "{a=\"b\"} ^ (\"x\")",
      "1:11: parse error: binary expression must contain only scalar and instant vector types" },
    { "-(foo[5m])", "1:1: parse error: unary expression only allowed on expressions of type scalar or "
                    "instant vector, got \"range vector\"" },
    { "+\"s\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
                "vector, got \"string\"" },
    { "(1)[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead" },
    { "\"a\"[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got string instead" },
    { "time()[5m:1m]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead" },
    { "foo{__name__!=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"" },
    { "foo{a=\"\\400\"}", "1:7: parse error: escape sequence is an invalid Unicode code point" },
    { "\"\\777\"", "1:1: parse error: escape sequence is an invalid Unicode code point" },
    { "\"\\U00110000x\"", "1:1: parse error: escape sequence is an invalid Unicode code point" },
    { "foo[5m:1m:]", "1:10: parse error: unexpected colon ':'" },
    { "foo[5m 1m]",
      "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\"" },
    { "foo[5m", "1:7: parse error: unclosed left bracket" },
    { "foo[[5m]]", "1:5: parse error: missing unit character in duration" },
    { "foo]", "1:4: parse error: unexpected right bracket ']'" },
    { "foo[5m]]", "1:8: parse error: unexpected right bracket ']'" },
    { "foo @ start(", "1:13: parse error: unclosed left parenthesis" },
    { "foo @ start(1", "1:13: parse error: unexpected number \"1\" in @, expected timestamp" },
    { "foo @ (1)", "1:7: parse error: unexpected \"(\" in @, expected timestamp" },
    { "foo offset (5m)", "1:12: parse error: unexpected \"(\" in offset, expected duration" },
    { "foo offset 5m5m", "1:12: parse error: not a valid duration string: \"5m5m\"" },
    { "sum by(a,,b)(foo)", "1:10: parse error: unexpected \",\" in grouping opts, expected label" },
    { "sum by()(foo) by()", "1:15: parse error: unexpected <by>" },
    { "sum by(a)(foo,)", "1:14: parse error: trailing commas not allowed in function call args" },
    { "count_values(\"a\" foo)", "1:18: parse error: unexpected identifier \"foo\" in aggregation" },
    { "topk(,)", "1:6: parse error: unexpected \",\" in aggregation" },
    { "sum(foo) ==", "1:12: parse error: unexpected end of input" },
    { "foo !=~ bar", "1:7: parse error: unexpected character: '~'" },
    { "foo !", "1:5: parse error: unexpected character after '!': '\xef\xbf\xbd"
               "'" },
    { "foo <> bar", "1:6: parse error: unexpected <op:>>" },
    { "foo >= = bar", "1:8: parse error: unexpected \"=\"" },
    { "foo{a=\"b\"} == bool", "1:19: parse error: unexpected end of input" },
    { "foo *", "1:6: parse error: unexpected end of input" },
    { "foo ^", "1:6: parse error: unexpected end of input" },
    { "foo[5m] offset", "1:15: parse error: unexpected end of input in offset, expected duration" },
    { "rate(foo[5m] offset)", "1:20: parse error: unexpected \")\" in offset, expected duration" },
    { "foo[99999999999999999999y]", "1:5: parse error: duration out of range" },
    { "foo[293y]", "1:5: parse error: duration out of range" },
    { "foo offset 300000y", "1:12: parse error: duration out of range" },
    { "foo[5m:99999999999999999999s]", "1:8: parse error: duration out of range" },
    { "foo[1ms1s]", "1:5: parse error: not a valid duration string: \"1ms1s\"" },
    { "foo[1hs]", "1:5: parse error: not a valid duration string: \"1hs\"" },
};

static void test_errors(void **state)
{
    strata_arena_t *arena = *state;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        promql_node_t *n = (promql_node_t *)1;
        promql_error_t err;
        int rc = promql_parse(errors[i].q, arena, &n, &err);
        if (rc != STRATA_EINVAL) fail_msg("%s: rc %d, want STRATA_EINVAL", errors[i].q, rc);
        assert_null(n);
        if (strcmp(err.msg, errors[i].msg))
            fail_msg("%s:\n got  %s\n want %s", errors[i].q, err.msg, errors[i].msg);
    }
}

/* Nesting is bounded, so that no recursion over the tree can overflow the
 * stack: deep parentheses, long operator chains, unary chains, calls. */
static void test_depth_limit(void **state)
{
    strata_arena_t *arena = *state;
    static const struct {
        const char *open, *leaf, *close;
        size_t n;
        int ok;
    } cases[] = {
        { "(", "1", ")", 500, 1 },       { "(", "1", ")", 100000, 0 },    { "1+", "1", "", 900, 1 },
        { "1+", "1", "", 100000, 0 },    { "-", "foo", "", 900, 1 },      { "-", "foo", "", 100000, 0 },
        { "abs(", "foo", ")", 900, 1 },  { "abs(", "foo", ")", 5000, 0 }, { "2^", "2", "", 100000, 0 },
        { "sum(", "foo", ")", 5000, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t k = 0, lo = strlen(cases[c].open), lc = strlen(cases[c].close);
        char *qq = malloc(cases[c].n * (lo + lc) + 8);
        assert_non_null(qq);
        for (size_t i = 0; i < cases[c].n; i++, k += lo) memcpy(qq + k, cases[c].open, lo);
        strcpy(qq + k, cases[c].leaf);
        k += strlen(cases[c].leaf);
        for (size_t i = 0; i < cases[c].n; i++, k += lc) memcpy(qq + k, cases[c].close, lc);
        qq[k] = '\0';
        promql_node_t *n;
        promql_error_t err;
        int rc = promql_parse(qq, arena, &n, &err);
        if (cases[c].ok) {
            if (rc != 0) fail_msg("%s x %zu: %s", cases[c].open, cases[c].n, err.msg);
            char *s = promql_print(n, arena);
            assert_non_null(s);
        } else {
            assert_int_equal(rc, STRATA_EINVAL);
            if (!strstr(err.msg, "parse error: expression nested too deeply (more than 1000 levels)"))
                fail_msg("%s x %zu: %s", cases[c].open, cases[c].n, err.msg);
        }
        free(qq);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_selectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modifiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_corners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
