/*
 * selector.h: the Prometheus series selector parser of the query room
 * (export's match[] today, the PromQL engine later; docs/api.md).
 *
 * Grammar: PromQL's vector selector without offsets or ranges,
 * name{a="v",b!="v",c=~"x|y",d!~"..."}.  The parser only builds matchers;
 * adding the tenant matcher is api_read_select()'s part (read.h).
 */
#ifndef API_SELECTOR_H
#define API_SELECTOR_H

#include <stddef.h>

#include "strata_arena.h"
#include "strata_err.h"
#include "tsdb.h"

/* Parses a Prometheus series selector: `name`, `name{...}` or `{...}` with
 * matchers `l="v"`, `l!="v"`, `l=~"re"`, `l!~"re"` (values in double or
 * single quotes or backticks, Go-style escapes), trailing comma allowed.
 * At least one matcher must not match the empty string, as in Prometheus.
 * Matchers and strings live in the arena.  STRATA_EINVAL on a syntax error,
 * STRATA_EBADREGEX on a bad regular expression; err (may be NULL) gets a
 * message. */
int api_selector_parse(strata_arena_t *arena, const char *sel, tsdb_matcher_t **out, size_t *n, char *err,
                       size_t errcap);

#endif
