/* strata_log.c: logfmt lines on stderr, one write() per line so threads do not interleave. */
#include "strata_log.h"
#include "strata_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = STRATA_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void strata_log_set_level(enum strata_log_level level) { atomic_store(&log_level, (int)level); }

int strata_log_parse_level(const char *name, enum strata_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum strata_log_level)i;
            return 0;
        }
    return STRATA_EINVAL;
}

const char *strata_log_quote(char *buf, size_t cap, const char *s)
{
    int needs = (*s == '\0');
    for (const char *p = s; *p && !needs; p++)
        needs = (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20);
    if (!needs) {
        snprintf(buf, cap, "%s", s);
        return buf;
    }
    size_t o = 0;
    if (o + 1 < cap) buf[o++] = '"';
    for (const char *p = s; *p && o + 3 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if ((unsigned char)*p < 0x20)
            buf[o++] = ' ';
        else
            buf[o++] = *p;
    }
    if (o + 1 < cap) buf[o++] = '"';
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

void strata_log(enum strata_log_level level, const char *msg, const char *kvfmt, ...)
{
    if ((int)level < atomic_load(&log_level)) return;
    char line[4096], qmsg[1024];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level], strata_log_quote(qmsg, sizeof qmsg, msg));
    if (kvfmt && *kvfmt && n > 0 && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, kvfmt, ap);
        va_end(ap);
        if (m > 0) n += m;
    }
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
