/*
 * filter.h: the filterBy terms the workloads and reports lists share
 * (docs/api.md, "List parameters"): "<field><op><value>" with the operators
 * == != <= >= (ordering, on the field's type) and =@ !@ =^ =$ (contains, does
 * not contain, starts with, ends with; on text).
 */
#ifndef API_FILTER_H
#define API_FILTER_H

#include <stddef.h>

enum api_filter_op {
    API_FILTER_EQ,
    API_FILTER_NE,
    API_FILTER_LE,
    API_FILTER_GE,
    API_FILTER_CONTAINS,
    API_FILTER_NCONTAINS,
    API_FILTER_PREFIX,
    API_FILTER_SUFFIX,
    API_FILTER_OP_COUNT
};

/* For error messages: every operator, space-separated. */
#define API_FILTER_OPS_TEXT "== != <= >= =@ !@ =^ =$"

/* Length of the field name a term starts with (its leading letters). */
size_t api_filter_field_len(const char *term);
/* The operator at p (two characters): 0 and *op, or -1 when none. */
int api_filter_op_parse(const char *p, enum api_filter_op *op);
/* 1 for == != <= >=, which compare values of the field's own type. */
static inline int api_filter_op_orders(enum api_filter_op op) { return op <= API_FILTER_GE; }
/* An ordering operator applied to a three-way comparison result c (<0, 0, >0). */
int api_filter_match_cmp(enum api_filter_op op, int c);
/* Any operator on text (ordering operators compare with strcmp). */
int api_filter_match_str(enum api_filter_op op, const char *s, const char *val);

#endif
