/*
 * strata_time.h: wall-clock time as the API speaks it.
 *
 * strata keeps every instant as int64 milliseconds since the Unix epoch (UTC),
 * like Prometheus.  This module converts to and from the text forms the API
 * accepts and produces:
 *   - RFC 3339 timestamps ("2024-12-20T14:30:00Z", "...00.25+02:00"),
 *   - unix seconds with an optional fraction ("1734705000.25", for export),
 *   - Prometheus-style durations ("10m", "1h30m", "500ms", for flags).
 * Nothing here allocates or reads the clock or the locale; all functions are
 * thread-safe.  Errors: STRATA_EINVAL for malformed or out-of-range input,
 * STRATA_EBUFSMALL when an output buffer is too small.
 */
#ifndef STRATA_TIME_H
#define STRATA_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any strata_time_format_rfc3339() output plus the NUL
 * ("9999-12-31T23:59:59.999Z" is 24 characters). */
#define STRATA_TIME_RFC3339_BUFSZ 32

/* Parses an RFC 3339 date-time into ms since the epoch (UTC):
 * YYYY-MM-DD "T" hh:mm:ss [.fraction] ("Z" | +hh:mm | -hh:mm).
 * 't' and 'z' are accepted as RFC 3339 allows; the whole string must match.
 * The fraction may have any number of digits (at least one); digits beyond
 * milliseconds are truncated toward the past (floor), as Prometheus does.
 * Calendar fields are range-checked (Feb 29 only in leap years).  A leap
 * second (ss = 60) is rejected: the epoch scale has no place for it. */
int strata_time_parse_rfc3339(const char *s, int64_t *out_ms);

/* Parses unix seconds: [+-]digits[.digits], no exponent, no spaces
 * ("1734705000", "1734705000.250", "-1.5").  Rounded to the nearest
 * millisecond, halves away from zero (as Prometheus' parseTime). */
int strata_time_parse_unix(const char *s, int64_t *out_ms);

/* Either form (for export's start/end): unix seconds when the string is one,
 * else RFC 3339.  The two grammars never both match. */
int strata_time_parse_any(const char *s, int64_t *out_ms);

/* Formats ms as RFC 3339 UTC with 'Z': whole seconds when ms is a whole
 * second ("2024-12-20T14:30:00Z"), else with milliseconds
 * ("2024-12-20T14:30:00.250Z").  Years 0000..9999 only (STRATA_EINVAL
 * outside).  Returns the length written (NUL excluded) or a negative error;
 * buf is always NUL-terminated when cap > 0. */
int strata_time_format_rfc3339(int64_t ms, char *buf, size_t cap);

/* Parses a Prometheus duration into ms: one or more <digits><unit> with units
 * y (365d), w, d, h, m, s, ms, each at most once and in that order ("1h30m",
 * "15d", "500ms"); "0" alone is also accepted.  Overflow is STRATA_EINVAL. */
int strata_duration_parse(const char *s, int64_t *out_ms);

#endif
