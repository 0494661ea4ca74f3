/*
 * test_helpers.h: shared cmocka helpers for strata's unit tests.
 *
 * assert_ok(expr) fails with the STRATA_E* message instead of a bare number;
 * test_tmpdir_new()/test_tmpdir_free() give each test a scratch directory.
 */
#ifndef STRATA_TEST_HELPERS_H
#define STRATA_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strata_err.h"

#define assert_ok(expr)                                                                 \
    do {                                                                                \
        int rc_ = (expr);                                                               \
        if (rc_ != 0) fail_msg("%s returned %d: %s", #expr, rc_, strata_strerror(rc_)); \
    } while (0)

#define assert_err(expr, want)                                                                     \
    do {                                                                                           \
        int rc_ = (expr), want_ = (want);                                                          \
        if (rc_ != want_)                                                                          \
            fail_msg("%s returned %d (%s), want %d (%s)", #expr, rc_, strata_strerror(rc_), want_, \
                     strata_strerror(want_));                                                      \
    } while (0)

/* A fresh directory under $TMPDIR (or /tmp); malloc'd path. */
static inline char *test_tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/strata-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    if (!d) fail_msg("mkdtemp failed");
    return strdup(d);
}

/* Removes the directory tree and frees the path. */
static inline void test_tmpdir_free(char *dir)
{
    if (!dir) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

static inline uint64_t test_double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static inline double test_bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

#endif
