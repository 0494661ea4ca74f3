/*
 * fuzz_promql_regex.c: libFuzzer target for promql_regex_translate
 * (api/promql/regex.c), the RE2 -> POSIX translation behind PromQL's =~, !~
 * and label_replace.
 *
 * The input is the pattern (NUL-terminated here; bytes after an embedded NUL
 * are ignored, a query string cannot carry one).  What must hold:
 *   - the answer is 0 or STRATA_EBADREGEX with a reason, never
 *     STRATA_EBUFSMALL with the 1025 bytes the header promises;
 *   - an accepted pattern compiles with regcomp(REG_EXTENDED) anchored as
 *     tsdb/index.c anchors it, has the groups the map names (RE2 groups at
 *     increasing POSIX numbers within re_nsub - 1, names inside the
 *     pattern), and regexec runs on a few values;
 *   - promql_regex_to_posix gives the same text and leaves *icase 0.
 */
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promql_funcs.h"
#include "strata_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048) return 0;
    char *pat = malloc(size + 1);
    if (!pat) return 0;
    memcpy(pat, data, size);
    pat[size] = 0;
    size_t len = strlen(pat), cap = 1025;
    char *out = malloc(cap), *out2 = malloc(cap), *anch = malloc(cap + 4);
    char why[256];
    promql_regex_groups_t g;
    if (!out || !out2 || !anch) abort();
    int rc = promql_regex_translate(pat, out, cap, &g, why, sizeof why);
    if (rc != 0) {
        if (rc != STRATA_EBADREGEX || why[0] == 0) abort();
    } else {
        size_t olen = strlen(out);
        if (olen >= cap) abort();
        memcpy(anch, "^(", 2);
        memcpy(anch + 2, out, olen);
        memcpy(anch + 2 + olen, ")$", 3);
        regex_t re;
        if (regcomp(&re, anch, REG_EXTENDED) != 0) abort();
        if (g.n < 0 || g.n > PROMQL_REGEX_MAX_GROUPS) abort();
        int prev = 0;
        for (int i = 0; i < g.n; i++) {
            if (g.posix[i] <= prev || (size_t)g.posix[i] + 1 > re.re_nsub) abort();
            prev = g.posix[i];
            if (g.name_len[i] < 0 || (size_t)g.name_off[i] + (size_t)g.name_len[i] > len) abort();
        }
        static const char *const vals[] = { "", "a", "foo", "A1_ \n-", "\xc3\xa9", "aaaaaaaaaaaaaaaa" };
        regmatch_t m[4];
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) (void)regexec(&re, vals[i], 4, m, 0);
        regfree(&re);
        int icase = -1;
        if (promql_regex_to_posix(pat, out2, cap, &icase, why, sizeof why) != 0) abort();
        if (icase != 0 || strcmp(out, out2) != 0) abort();
    }
    free(out);
    free(out2);
    free(anch);
    free(pat);
    return 0;
}
