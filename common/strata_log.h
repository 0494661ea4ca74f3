/*
 * strata_log.h: logfmt logging to stderr.
 *
 * Every line is `ts=<RFC3339 ms> level=<lvl> msg="<msg>" <kv...>`.  The kv part
 * is a printf format the caller writes as logfmt pairs; use strata_log_quote()
 * for values that may contain spaces or quotes.  Log an error once, where it
 * happens, not again at every layer it passes through.
 */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stddef.h>

enum strata_log_level { STRATA_LOG_DEBUG, STRATA_LOG_INFO, STRATA_LOG_WARN, STRATA_LOG_ERROR };

/* Messages below this level are dropped (default INFO).  Thread-safe. */
void strata_log_set_level(enum strata_log_level level);
/* Parses "debug|info|warn|error"; returns 0 or STRATA_EINVAL. */
int strata_log_parse_level(const char *name, enum strata_log_level *out);

void strata_log(enum strata_log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s into buf as a logfmt value (quoted and escaped when needed); returns buf. */
const char *strata_log_quote(char *buf, size_t cap, const char *s);

#define STRATA_LOG_DEBUG_(msg, ...) strata_log(STRATA_LOG_DEBUG, msg, __VA_ARGS__)
#define strata_info(msg, ...)       strata_log(STRATA_LOG_INFO, msg, __VA_ARGS__)
#define strata_warn(msg, ...)       strata_log(STRATA_LOG_WARN, msg, __VA_ARGS__)
#define strata_error(msg, ...)      strata_log(STRATA_LOG_ERROR, msg, __VA_ARGS__)

#endif
