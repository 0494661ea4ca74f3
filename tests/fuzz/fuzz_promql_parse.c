/*
 * fuzz_promql_parse.c: libFuzzer target for the PromQL parser and printer
 * (api/promql/lexer.c, parser.c, printer.c).
 *
 * The input is the query text (NUL-terminated here; bytes after an embedded
 * NUL are ignored, as the C string API would).  What must hold:
 *   - an error is STRATA_EINVAL with a message "L:C: parse error: ..." whose
 *     position lies inside the query (or just past its end);
 *   - a success has a type, prints, the print parses again to a tree of the
 *     same kind and type, and printing that gives the very same text (print
 *     is a fixed point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *q = malloc(size + 1);
    if (!q) return 0;
    memcpy(q, data, size);
    q[size] = '\0';

    strata_arena_t *arena = strata_arena_new(0);
    if (!arena) abort();
    strata_arena_set_cap(arena, 64u << 20);
    promql_node_t *n = NULL;
    promql_error_t err;
    int rc = promql_parse(q, arena, &n, &err);
    if (rc == STRATA_ENOMEM) goto out;
    if (rc) {
        if (rc != STRATA_EINVAL || n) abort();
        if (!strstr(err.msg, ": parse error: ")) abort();
        if (err.pos < 0 || (size_t)err.pos > strlen(q) + 1) abort();
        goto out;
    }
    if (!n || promql_node_type(n) == PROMQL_TYPE_NONE) abort();
    char *s1 = promql_print(n, arena);
    if (!s1) goto out;
    promql_node_t *n2 = NULL;
    rc = promql_parse(s1, arena, &n2, &err);
    if (rc == STRATA_ENOMEM) goto out;
    if (rc) {
        fprintf(stderr, "query %s\nprints %s\nwhich fails: %s\n", q, s1, err.msg);
        abort();
    }
    if (n2->kind != n->kind || n2->type != n->type) {
        fprintf(stderr, "query %s\nprints %s\nwhich parses to another kind or type\n", q, s1);
        abort();
    }
    char *s2 = promql_print(n2, arena);
    if (s2 && strcmp(s1, s2)) {
        fprintf(stderr, "query %s\nprints %s\nthen %s\n", q, s1, s2);
        abort();
    }
out:
    strata_arena_free(arena);
    free(q);
    return 0;
}
