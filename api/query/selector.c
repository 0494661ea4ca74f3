/*
 * selector.c: Prometheus series selector parsing into tsdb matchers
 * (selector.h; export's match[], docs/api.md).
 *
 * Grammar (PromQL's vector selector without offsets or ranges):
 *   selector := name [ '{' [ matcher { ',' matcher } [ ',' ] ] '}' ] | '{' ... '}'
 *   matcher  := label ( '=' | '!=' | '=~' | '!~' ) string
 * Strings take "..." or '...' with Go escapes, or `...` raw.  Regexes are
 * checked here with regcomp (anchored, as tsdb will use them) so a bad one is
 * a 400 naming it rather than a failure deep in the store.
 */
#include "selector.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"

typedef struct parser {
    const char *p;
    strata_arena_t *arena;
    char *err;
    size_t errcap;
} parser_t;

static int fail(parser_t *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser_t *ps, int code, const char *fmt, ...)
{
    if (ps->err && ps->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->errcap, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void skip_ws(parser_t *ps)
{
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

static int is_name_start(int c, int metric) { return isalpha(c) || c == '_' || (metric && c == ':'); }
static int is_name_char(int c, int metric) { return isalnum(c) || c == '_' || (metric && c == ':'); }

static char *ident(parser_t *ps, int metric)
{
    const char *s = ps->p;
    if (!is_name_start((unsigned char)*s, metric)) return NULL;
    while (is_name_char((unsigned char)*ps->p, metric)) ps->p++;
    return strata_arena_strndup(ps->arena, s, (size_t)(ps->p - s));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int string_lit(parser_t *ps, char **out)
{
    char q = *ps->p;
    if (q != '"' && q != '\'' && q != '`')
        return fail(ps, STRATA_EINVAL, "expected a quoted string at \"%.20s\"", ps->p);
    const char *s = ++ps->p;
    const char *end = s;
    /* find the closing quote first to size the output */
    while (*end && *end != q) {
        if (q != '`' && *end == '\\' && end[1]) end++;
        end++;
    }
    if (*end != q) return fail(ps, STRATA_EINVAL, "unterminated string");
    char *o = strata_arena_alloc(ps->arena, (size_t)(end - s) + 1);
    if (!o) return STRATA_ENOMEM;
    size_t n = 0;
    for (const char *c = s; c < end; c++) {
        if (q == '`' || *c != '\\') {
            o[n++] = *c;
            continue;
        }
        c++;
        switch (*c) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case 'a': o[n++] = '\a'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'v': o[n++] = '\v'; break;
        case '\\':
        case '"':
        case '\'': o[n++] = *c; break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = *c == 'x' ? 2 : *c == 'u' ? 4 : 8;
            unsigned cp = 0;
            for (int i = 0; i < digits; i++) {
                int h = c + 1 < end ? hexval((unsigned char)c[1]) : -1;
                if (h < 0) return fail(ps, STRATA_EINVAL, "bad escape in string");
                cp = cp * 16 + (unsigned)h;
                c++;
            }
            if (digits == 2)
                o[n++] = (char)cp;
            else if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return fail(ps, STRATA_EINVAL, "bad unicode escape in string");
            else
                n += put_utf8(o + n, cp);
            break;
        }
        default: return fail(ps, STRATA_EINVAL, "unknown escape \\%c in string", *c ? *c : '0');
        }
    }
    o[n] = '\0';
    if (strlen(o) != n || !ingest_valid_utf8(o, n))
        return fail(ps, STRATA_EINVAL, "string is not valid UTF-8");
    ps->p = end + 1;
    *out = o;
    return 0;
}

/* Does matcher m match the empty string (i.e. a series without the label)? */
static int matches_empty(const tsdb_matcher_t *m, const regex_t *re)
{
    switch (m->op) {
    case TSDB_MATCH_EQ: return m->value[0] == '\0';
    case TSDB_MATCH_NEQ: return m->value[0] != '\0';
    case TSDB_MATCH_RE: return regexec(re, "", 0, NULL, 0) == 0;
    case TSDB_MATCH_NRE: return regexec(re, "", 0, NULL, 0) != 0;
    }
    return 1;
}

int api_selector_parse(strata_arena_t *arena, const char *sel, tsdb_matcher_t **out, size_t *n, char *err,
                       size_t errcap)
{
    parser_t ps = { sel, arena, err, errcap };
    size_t cap = 8, cnt = 0;
    tsdb_matcher_t *m = strata_arena_alloc(arena, cap * sizeof *m);
    if (!m) return STRATA_ENOMEM;
    skip_ws(&ps);
    if (is_name_start((unsigned char)*ps.p, 1)) {
        char *name = ident(&ps, 1);
        if (!name) return STRATA_ENOMEM;
        m[cnt++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "__name__", name };
        skip_ws(&ps);
    }
    if (*ps.p == '{') {
        ps.p++;
        for (;;) {
            skip_ws(&ps);
            if (*ps.p == '}') {
                ps.p++;
                break;
            }
            char *label = ident(&ps, 0);
            if (!label) return fail(&ps, STRATA_EINVAL, "expected a label name at \"%.20s\"", ps.p);
            skip_ws(&ps);
            enum tsdb_match_op op;
            if (ps.p[0] == '=' && ps.p[1] == '~') {
                op = TSDB_MATCH_RE;
                ps.p += 2;
            } else if (ps.p[0] == '!' && ps.p[1] == '~') {
                op = TSDB_MATCH_NRE;
                ps.p += 2;
            } else if (ps.p[0] == '!' && ps.p[1] == '=') {
                op = TSDB_MATCH_NEQ;
                ps.p += 2;
            } else if (ps.p[0] == '=') {
                op = TSDB_MATCH_EQ;
                ps.p += 1;
            } else
                return fail(&ps, STRATA_EINVAL, "expected =, !=, =~ or !~ after label \"%s\"", label);
            skip_ws(&ps);
            char *value = NULL;
            int rc = string_lit(&ps, &value);
            if (rc) return rc;
            if (cnt == cap) {
                tsdb_matcher_t *nm = strata_arena_alloc(arena, cap * 2 * sizeof *nm);
                if (!nm) return STRATA_ENOMEM;
                memcpy(nm, m, cnt * sizeof *m);
                m = nm;
                cap *= 2;
            }
            m[cnt++] = (tsdb_matcher_t){ op, label, value };
            skip_ws(&ps);
            if (*ps.p == ',') {
                ps.p++;
                continue;
            }
            if (*ps.p == '}') {
                ps.p++;
                break;
            }
            return fail(&ps, STRATA_EINVAL, "expected , or } at \"%.20s\"", ps.p);
        }
    }
    skip_ws(&ps);
    if (*ps.p) return fail(&ps, STRATA_EINVAL, "unexpected \"%.20s\" after the selector", ps.p);
    if (cnt == 0) return fail(&ps, STRATA_EINVAL, "empty selector");

    int nonempty = 0;
    for (size_t i = 0; i < cnt; i++) {
        regex_t re;
        memset(&re, 0, sizeof re);
        int isre = m[i].op == TSDB_MATCH_RE || m[i].op == TSDB_MATCH_NRE;
        if (isre) {
            char why[96];
            if (tsdb_regex_check(m[i].value, why, sizeof why) != 0)
                return fail(&ps, STRATA_EBADREGEX,
                            "regular expression \"%.100s\" for label \"%s\" is too costly: %s", m[i].value,
                            m[i].name, why);
            size_t l = strlen(m[i].value);
            char *anch = strata_arena_alloc(arena, l + 5);
            if (!anch) return STRATA_ENOMEM;
            snprintf(anch, l + 5, "^(%s)$", m[i].value);
            if (regcomp(&re, anch, REG_EXTENDED | REG_NOSUB) != 0)
                return fail(&ps, STRATA_EBADREGEX, "invalid regular expression \"%.100s\" for label \"%s\"",
                            m[i].value, m[i].name);
        }
        if (!matches_empty(&m[i], &re)) nonempty = 1;
        if (isre) regfree(&re);
    }
    if (!nonempty)
        return fail(&ps, STRATA_EINVAL,
                    "selector must contain at least one matcher that does not match the empty string");
    *out = m;
    *n = cnt;
    return 0;
}
