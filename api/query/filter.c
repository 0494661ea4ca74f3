/*
 * filter.c: filterBy terms (filter.h).
 */
#include "filter.h"

#include <ctype.h>
#include <string.h>

static const char *const OPS[API_FILTER_OP_COUNT] = { "==", "!=", "<=", ">=", "=@", "!@", "=^", "=$" };

size_t api_filter_field_len(const char *term)
{
    size_t i = 0;
    while (isalpha((unsigned char)term[i])) i++;
    return i;
}

int api_filter_op_parse(const char *p, enum api_filter_op *op)
{
    for (int k = 0; k < API_FILTER_OP_COUNT; k++)
        if (strncmp(p, OPS[k], 2) == 0) {
            *op = (enum api_filter_op)k;
            return 0;
        }
    return -1;
}

int api_filter_match_cmp(enum api_filter_op op, int c)
{
    switch (op) {
    case API_FILTER_EQ: return c == 0;
    case API_FILTER_NE: return c != 0;
    case API_FILTER_LE: return c <= 0;
    case API_FILTER_GE: return c >= 0;
    default: return 0;
    }
}

int api_filter_match_str(enum api_filter_op op, const char *s, const char *val)
{
    size_t n = strlen(s), m = strlen(val);
    switch (op) {
    case API_FILTER_CONTAINS: return strstr(s, val) != NULL;
    case API_FILTER_NCONTAINS: return strstr(s, val) == NULL;
    case API_FILTER_PREFIX: return n >= m && memcmp(s, val, m) == 0;
    case API_FILTER_SUFFIX: return n >= m && memcmp(s + n - m, val, m) == 0;
    default: return api_filter_match_cmp(op, strcmp(s, val));
    }
}
