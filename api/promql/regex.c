/*
 * regex.c: promql_regex_translate / promql_regex_to_posix, RE2 patterns as
 * PromQL writes them (Go's regexp/syntax with Perl flags, wrapped by
 * Prometheus 3 in ^(?s:...)$) rewritten into glibc's POSIX extended syntax
 * with the same set of fully matched strings (docs/promql.md, "Kernels").
 *
 * One pass over the pattern.  Character classes become a 256-bit set
 * (case folded for (?i), complemented for [^...]) printed back as one
 * POSIX bracket expression, so none of the two syntaxes' bracket quirks
 * (']' first, '-' last, '[:' openers, escapes inside) leak through.
 * Non-capturing groups have no POSIX form and become plain groups: the
 * groups map says which POSIX group each RE2 capture group became.
 */
#include "promql_funcs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "strata_err.h"

#define MAX_DEPTH   64
#define MAX_REPEAT  1000 /* Go's limit on {n,m} */
#define POSIX_SPECS ".[]()*+?{}|^$\\"

enum { F_ICASE = 1, F_DOTNL = 2, F_MULTI = 4, F_UNGREEDY = 8 };

/* What precedes a quantifier: nothing to repeat, an atom, an already
 * repeated atom, or an empty-width assertion. */
enum { A_NONE, A_ATOM, A_REPEATED, A_ASSERT };

typedef struct cset {
    unsigned char bit[32];
} cset_t;

typedef struct rx {
    const char *src; /* the whole pattern, for group name offsets */
    const char *p;
    char *out;
    size_t cap, len;
    int overflow;
    char *why;
    size_t whycap;
    int flags;
    int depth;
    int saved_flags[MAX_DEPTH];
    size_t group_start[MAX_DEPTH]; /* output offset of each open group's '(' */
    int posix_groups, re2_groups;
    promql_regex_groups_t *groups;
    int atom;
    size_t atom_start;  /* output offset of the last atom */
    int atom_multibyte; /* a UTF-8 literal of several bytes: one rune to RE2 */
    int atom_anyrune;   /* a one-byte atom standing for any character of a set */
    cset_t rune_ascii;  /* that set's ASCII members */
} rx_t;

static void cs_add(cset_t *s, int c) { s->bit[c >> 3] |= (unsigned char)(1u << (c & 7)); }
static int cs_has(const cset_t *s, int c) { return s->bit[c >> 3] >> (c & 7) & 1; }
static void cs_range(cset_t *s, int lo, int hi)
{
    for (int c = lo; c <= hi; c++)
        if (c) cs_add(s, c); /* NUL never occurs in a label value */
}

static int refuse(rx_t *r, const char *fmt, ...)
{
    if (r->why && r->whycap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, r->whycap, fmt, ap);
        va_end(ap);
    }
    return STRATA_EBADREGEX;
}

static void put(rx_t *r, const char *s, size_t n)
{
    if (r->len + n >= r->cap) {
        r->overflow = 1;
        return;
    }
    memcpy(r->out + r->len, s, n);
    r->len += n;
}

static void putc_(rx_t *r, char c) { put(r, &c, 1); }

static void begin_atom(rx_t *r)
{
    r->atom = A_ATOM;
    r->atom_start = r->len;
    r->atom_multibyte = 0;
    r->atom_anyrune = 0;
}

/* One character of the pattern's text as a POSIX atom. */
static void emit_char(rx_t *r, int c)
{
    begin_atom(r);
    if ((r->flags & F_ICASE) && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
        char b[4] = { '[', (char)(c | 0x20), (char)(c & ~0x20), ']' };
        put(r, b, 4);
    } else {
        if (strchr(POSIX_SPECS, c)) putc_(r, '\\');
        putc_(r, (char)c);
    }
}

static int utf8_encode(unsigned cp, char *b)
{
    if (cp < 0x80) return b[0] = (char)cp, 1;
    if (cp < 0x800) return b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | cp >> 18);
    b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* A code point outside a class: ASCII as emit_char, others as their UTF-8
 * bytes, remembered as one atom for a following quantifier. */
static int emit_rune(rx_t *r, unsigned cp)
{
    if (cp == 0) return refuse(r, "NUL character in pattern");
    if (cp < 0x80) {
        emit_char(r, (int)cp);
        return 0;
    }
    char b[4];
    int n = utf8_encode(cp, b);
    begin_atom(r);
    put(r, b, (size_t)n);
    r->atom_multibyte = 1;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Go's parseEscape: r->p is past the backslash.  Octal, \x, the C escapes
 * and escaped punctuation; anything else is not RE2. */
static int parse_escape(rx_t *r, unsigned *cp)
{
    const char *start = r->p - 1;
    int c = (unsigned char)*r->p;
    if (!c) return refuse(r, "trailing backslash at end of expression");
    r->p++;
    if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
        *cp = (unsigned)c;
        return 0;
    }
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        if (*r->p < '0' || *r->p > '7') break; /* \1: a backreference, not RE2 */
        /* fallthrough */
    case '0': {
        unsigned v = (unsigned)(c - '0');
        for (int i = 1; i < 3 && *r->p >= '0' && *r->p <= '7'; i++) v = v * 8 + (unsigned)(*r->p++ - '0');
        *cp = v;
        return 0;
    }
    case 'x':
        if (*r->p == '{') {
            unsigned v = 0;
            int nhex = 0;
            const char *q = r->p + 1;
            for (; *q && *q != '}'; q++) {
                int h = hexval((unsigned char)*q);
                if (h < 0 || (v = v * 16 + (unsigned)h) > 0x10FFFF) break;
                nhex++;
            }
            if (*q != '}' || nhex == 0) break;
            r->p = q + 1;
            *cp = v;
            return 0;
        } else {
            int x = *r->p ? hexval((unsigned char)r->p[0]) : -1;
            int y = x >= 0 ? hexval((unsigned char)r->p[1]) : -1;
            if (x < 0 || y < 0) break;
            r->p += 2;
            *cp = (unsigned)(x * 16 + y);
            return 0;
        }
    case 'a': *cp = '\a'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'v': *cp = '\v'; return 0;
    }
    int n = (int)(r->p - start);
    return refuse(r, "invalid escape sequence: `%.*s`", n, start);
}

/* \d \s \w and their negations (ASCII, as RE2's Perl classes). */
static int perl_class(int c, cset_t *s)
{
    cset_t t;
    memset(&t, 0, sizeof t);
    switch (c | 0x20) {
    case 'd': cs_range(&t, '0', '9'); break;
    case 's': cs_add(&t, '\t'), cs_add(&t, '\n'), cs_add(&t, '\f'), cs_add(&t, '\r'), cs_add(&t, ' '); break;
    case 'w': cs_range(&t, '0', '9'), cs_range(&t, 'A', 'Z'), cs_range(&t, 'a', 'z'), cs_add(&t, '_'); break;
    default: return 0;
    }
    int neg = c >= 'A' && c <= 'Z';
    for (int i = 1; i < 256; i++)
        if (cs_has(&t, i) != neg) cs_add(s, i);
    return 1;
}

/* [[:name:]] as Go defines them (ASCII). */
static int named_class(const char *name, size_t n, int neg, cset_t *s)
{
    static const struct {
        const char *name;
        const char *ranges; /* pairs lo, hi */
    } tab[] = {
        { "alnum", "09AZaz" },
        { "alpha", "AZaz" },
        { "ascii", "\x01\x7f" },
        { "blank", "\t\t  " },
        { "cntrl", "\x01\x1f\x7f\x7f" },
        { "digit", "09" },
        { "graph", "!~" },
        { "lower", "az" },
        { "print", " ~" },
        { "punct", "!/:@[`{~" },
        { "space", "\t\r  " },
        { "upper", "AZ" },
        { "word", "09AZaz__" },
        { "xdigit", "09AFaf" },
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strlen(tab[i].name) != n || memcmp(tab[i].name, name, n) != 0) continue;
        cset_t t;
        memset(&t, 0, sizeof t);
        for (const char *q = tab[i].ranges; *q; q += 2)
            cs_range(&t, (unsigned char)q[0], (unsigned char)q[1]);
        for (int c = 1; c < 256; c++)
            if (cs_has(&t, c) != neg) cs_add(s, c);
        return 1;
    }
    return 0;
}

/* One literal member of a class: a plain character or an escape. */
static int class_char(rx_t *r, int *out)
{
    unsigned cp;
    if (*r->p == '\\') {
        r->p++;
        if (*r->p == 'p' || *r->p == 'P')
            return refuse(r, "Unicode character classes (\\p, \\P) have no POSIX equivalent");
        int rc = parse_escape(r, &cp);
        if (rc) return rc;
    } else {
        unsigned char c = (unsigned char)*r->p;
        if (c >= 0x80) {
            int n = utf8_len((const unsigned char *)r->p);
            if (!n) return refuse(r, "invalid UTF-8");
            cp = 0x80; /* refused below */
        } else {
            cp = c;
        }
        r->p++;
    }
    if (cp == 0) return refuse(r, "NUL character in pattern");
    if (cp >= 0x80) return refuse(r, "non-ASCII character in a character class has no POSIX equivalent here");
    *out = (int)cp;
    return 0;
}

/* The members of m (ASCII, at least two, or one that is '^' with '-'),
 * with high the bytes >= 0x80, inside [ ] or [^ ], ordered so that POSIX reads them back as written:
 * ']' first, '^' never first, '-' last, ranges for runs of three or more. */
static void emit_bracket(rx_t *r, const cset_t *m, int negate, int high)
{
    putc_(r, '[');
    if (negate) putc_(r, '^');
    int any = 0;
    if (cs_has(m, ']')) putc_(r, ']'), any = 1;
    if (high) put(r, "\x80-\xff", 3), any = 1; /* the bytes >= 0x80 too (C locale) */
    for (int c = 1; c < 128;) {
        if (!cs_has(m, c) || c == ']' || c == '-' || c == '^') {
            c++;
            continue;
        }
        int e = c;
        while (e + 1 < 128 && cs_has(m, e + 1) && e + 1 != ']' && e + 1 != '-' && e + 1 != '^') e++;
        if (e - c >= 2) {
            char b[3] = { (char)c, '-', (char)e };
            put(r, b, 3);
        } else {
            for (int k = c; k <= e; k++) putc_(r, (char)k);
        }
        any = 1;
        c = e + 1;
    }
    int caret = cs_has(m, '^'), dash = cs_has(m, '-');
    if (caret && !any && !negate) {
        /* '^' first would negate: '-' goes first instead. */
        putc_(r, '-');
        putc_(r, '^');
    } else {
        if (caret) putc_(r, '^');
        if (dash) putc_(r, '-');
    }
    putc_(r, ']');
}

/* An ASCII set as one atom: a single character escaped, a bracket, or
 * for most of ASCII the negation of the rest and of the bytes >= 0x80. */
static void emit_ascii(rx_t *r, const cset_t *m)
{
    int n = 0, only = 0;
    for (int c = 1; c < 128; c++)
        if (cs_has(m, c)) n++, only = c;
    if (n == 1) {
        if (strchr(POSIX_SPECS, only)) putc_(r, '\\');
        putc_(r, (char)only);
    } else if (n > 64) {
        cset_t not ;
        memset(&not, 0, sizeof not );
        for (int c = 1; c < 128; c++)
            if (!cs_has(m, c)) cs_add(&not, c);
        emit_bracket(r, &not, 1, 1);
    } else {
        emit_bracket(r, m, 0, 0);
    }
}

/* The set printed as one POSIX atom.  A set holding the bytes >= 0x80 (`.`,
 * a negated class: RE2 then matches any other character) is printed as
 * the negation of its ASCII complement, which matches one byte; unless a
 * `*` follows, expand_rune later rewrites it to match one whole UTF-8
 * character.  Under `*` bytes give the same matches: every other atom
 * matches whole characters, and a run of bytes between two character
 * boundaries is a run of characters of the set (it holds every non-ASCII
 * one).  Not under `+`: ".+.+" would match the two bytes of "é". */
static void emit_set(rx_t *r, const cset_t *s)
{
    int high = 1, n = 0;
    for (int c = 128; c < 256; c++) high &= cs_has(s, c);
    for (int c = 1; c < 128; c++) n += cs_has(s, c);
    begin_atom(r);
    if (!high && n == 0) {
        /* RE2 accepts a class of nothing ([^\d\D]); POSIX has no empty
         * bracket, but one excluding every byte (C locale) matches nothing. */
        put(r, "[^\x01-\xff]", 6);
        return;
    }
    if (!high) {
        emit_ascii(r, s);
        return;
    }
    memset(&r->rune_ascii, 0, sizeof r->rune_ascii);
    for (int c = 1; c < 128; c++)
        if (cs_has(s, c)) cs_add(&r->rune_ascii, c);
    r->atom_anyrune = 1;
    if (n == 127) {
        putc_(r, '.'); /* every byte: '.' matches newlines without REG_NEWLINE */
        return;
    }
    cset_t m;
    memset(&m, 0, sizeof m);
    for (int c = 1; c < 128; c++)
        if (!cs_has(s, c)) cs_add(&m, c);
    emit_bracket(r, &m, 1, 0);
}

/* The pending one-character atom at atom_start as a group matching one
 * ASCII member or one UTF-8 sequence (label values are valid UTF-8, so the
 * lead byte ranges need not exclude overlongs). */
static void expand_rune(rx_t *r)
{
    static const char multi[] = "[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|"
                                "[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf])";
    r->atom_anyrune = 0;
    if (r->overflow) return;
    r->len = r->atom_start;
    putc_(r, '(');
    r->posix_groups++;
    int any = 0;
    for (int c = 1; c < 128; c++) any |= cs_has(&r->rune_ascii, c);
    if (any) {
        emit_ascii(r, &r->rune_ascii);
        putc_(r, '|');
    }
    put(r, multi, sizeof multi - 1);
}

static void fold_case(cset_t *s)
{
    for (int c = 'a'; c <= 'z'; c++)
        if (cs_has(s, c) || cs_has(s, c - 32)) cs_add(s, c), cs_add(s, c - 32);
}

/* A bracket expression; r->p is past '['. */
static int parse_class(rx_t *r)
{
    cset_t s;
    memset(&s, 0, sizeof s);
    int neg = 0, first = 1, rc;
    if (*r->p == '^') neg = 1, r->p++;
    while (first || *r->p != ']') {
        if (!*r->p) return refuse(r, "missing closing ]");
        first = 0;
        if (r->p[0] == '[' && r->p[1] == ':') {
            const char *end = strstr(r->p + 2, ":]");
            if (end) {
                const char *name = r->p + 2;
                int nneg = *name == '^';
                name += nneg;
                if (!named_class(name, (size_t)(end - name), nneg, &s))
                    return refuse(r, "invalid character class range: `%.*s`", (int)(end + 2 - r->p), r->p);
                r->p = end + 2;
                continue;
            }
        }
        if (r->p[0] == '\\' && r->p[1] && strchr("dDsSwW", r->p[1])) {
            perl_class(r->p[1], &s);
            r->p += 2;
            continue;
        }
        const char *item = r->p;
        int lo, hi;
        if ((rc = class_char(r, &lo))) return rc;
        hi = lo;
        if (r->p[0] == '-' && r->p[1] && r->p[1] != ']') {
            r->p++;
            if ((rc = class_char(r, &hi))) return rc;
            if (hi < lo) return refuse(r, "invalid character class range: `%.*s`", (int)(r->p - item), item);
        }
        cs_range(&s, lo, hi);
    }
    r->p++;
    if (r->flags & F_ICASE) fold_case(&s);
    if (neg) {
        cset_t t;
        memset(&t, 0, sizeof t);
        for (int c = 1; c < 256; c++)
            if (!cs_has(&s, c)) cs_add(&t, c);
        s = t;
    }
    emit_set(r, &s);
    return 0;
}

/* *, +, ?, {n}, {n,}, {n,m} after an atom; r->p is at the operator and
 * qlen its length. */
static int quantifier(rx_t *r, size_t qlen)
{
    const char *q = r->p;
    size_t full = qlen + (q[qlen] == '?');
    if (r->atom == A_NONE) return refuse(r, "missing argument to repetition operator: `%.*s`", (int)qlen, q);
    if (r->atom == A_REPEATED) return refuse(r, "invalid nested repetition operator: `%.*s`", (int)full, q);
    if (r->atom == A_ASSERT)
        return refuse(r, "repetition of an empty-width assertion has no POSIX equivalent: `%.*s`", (int)qlen,
                      q);
    int lazy = (q[qlen] == '?') != ((r->flags & F_UNGREEDY) != 0);
    if (lazy) return refuse(r, "non-greedy repetition `%.*s` has no POSIX equivalent", (int)full, q);
    if (r->atom_multibyte && !r->overflow) {
        /* RE2 repeats the rune, POSIX (bytes) would repeat its last byte. */
        if (r->len + 2 >= r->cap) {
            r->overflow = 1;
        } else {
            memmove(r->out + r->atom_start + 1, r->out + r->atom_start, r->len - r->atom_start);
            r->out[r->atom_start] = '(';
            r->len++;
            putc_(r, ')');
            r->posix_groups++;
        }
    }
    put(r, q, qlen);
    r->p += full;
    r->atom = A_REPEATED;
    r->atom_anyrune = 0;
    return 0;
}

/* {n}, {n,}, {n,m}: its length, 0 when the brace is a literal (RE2 treats
 * "{", "{,3}", "{a}" as text), or an error for counts over 1000. */
static int repeat_len(rx_t *r, size_t *len)
{
    const char *q = r->p + 1;
    long lo = -1, hi = -1;
    *len = 0;
    if (*q < '0' || *q > '9') return 0;
    lo = 0;
    for (; *q >= '0' && *q <= '9'; q++)
        if (lo <= MAX_REPEAT) lo = lo * 10 + (*q - '0'); /* past 1000 it only has to stay over it */
    hi = lo;
    if (*q == ',') {
        q++;
        hi = -1;
        if (*q >= '0' && *q <= '9') {
            hi = 0;
            for (; *q >= '0' && *q <= '9'; q++)
                if (hi <= MAX_REPEAT) hi = hi * 10 + (*q - '0');
        }
    }
    if (*q != '}') return 0;
    q++;
    if (lo > MAX_REPEAT || hi > MAX_REPEAT || (hi >= 0 && hi < lo))
        return refuse(r, "invalid repeat count: `%.*s`", (int)(q - r->p), r->p);
    *len = (size_t)(q - r->p);
    return 0;
}

static int open_group(rx_t *r, int capture, const char *name, size_t namelen, int newflags)
{
    if (r->depth == MAX_DEPTH) return refuse(r, "groups nested more than %d deep", MAX_DEPTH);
    r->saved_flags[r->depth] = r->flags;
    r->group_start[r->depth++] = r->len;
    r->flags = newflags;
    putc_(r, '(');
    r->posix_groups++;
    if (capture) {
        r->re2_groups++;
        if (r->groups) {
            if (r->re2_groups > PROMQL_REGEX_MAX_GROUPS)
                return refuse(r, "more than %d capture groups", PROMQL_REGEX_MAX_GROUPS);
            int i = r->re2_groups - 1;
            r->groups->posix[i] = r->posix_groups;
            r->groups->name_off[i] = name ? (int)(name - r->src) : 0;
            r->groups->name_len[i] = name ? (int)namelen : 0;
            r->groups->n = r->re2_groups;
        }
    }
    r->atom = A_NONE;
    return 0;
}

/* "(?" constructs; r->p is at '('. */
static int perl_group(rx_t *r)
{
    const char *start = r->p, *q = r->p + 2;
    if ((q[0] == 'P' && q[1] == '<') || (q[0] == '<' && q[1] != '=' && q[1] != '!')) {
        const char *name = q + (q[0] == 'P' ? 2 : 1), *e = name;
        while ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') || *e == '_')
            e++;
        if (*e != '>' || e == name)
            return refuse(r, "invalid named capture: `%.*s`", (int)(e - start + 1), start);
        r->p = e + 1;
        return open_group(r, 1, name, (size_t)(e - name), r->flags);
    }
    if (q[0] == '=' || q[0] == '!' || (q[0] == '<' && (q[1] == '=' || q[1] == '!')))
        return refuse(r, "lookaround `%.*s` is not RE2 syntax", (int)(q - start + 1 + (q[0] == '<')), start);
    int flags = r->flags, neg = 0, seen = 0;
    for (;; q++) {
        int bit = 0;
        switch (*q) {
        case 'i': bit = F_ICASE; break;
        case 's': bit = F_DOTNL; break;
        case 'm': bit = F_MULTI; break;
        case 'U': bit = F_UNGREEDY; break;
        case '-':
            if (neg) goto bad;
            neg = 1, seen = 0;
            continue;
        case ':':
        case ')':
            if (!seen && (neg || *q == ')')) goto bad; /* "(?)", "(?i-)", "(?-:"; "(?:" is fine */
            r->p = q + 1;
            if (*q == ':') return open_group(r, 0, NULL, 0, flags);
            r->flags = flags;
            r->atom = A_NONE;
            return 0;
        default: goto bad;
        }
        flags = neg ? flags & ~bit : flags | bit;
        seen = 1;
    }
bad:
    return refuse(r, "invalid or unsupported Perl syntax: `%.*s`", (int)(q - start + (*q != 0)), start);
}

static int translate(rx_t *r)
{
    int rc;
    while (*r->p) {
        unsigned char c = (unsigned char)*r->p;
        if (r->atom_anyrune && c != '*') expand_rune(r);
        switch (c) {
        case '(':
            if (r->p[1] == '?') {
                if ((rc = perl_group(r))) return rc;
            } else {
                r->p++;
                if ((rc = open_group(r, 1, NULL, 0, r->flags))) return rc;
            }
            continue;
        case ')': {
            if (r->depth == 0) return refuse(r, "unexpected ): `%s`", r->src);
            putc_(r, ')');
            r->flags = r->saved_flags[--r->depth];
            /* The group is the atom a quantifier would repeat. */
            r->atom = A_ATOM;
            r->atom_start = r->group_start[r->depth];
            r->atom_multibyte = 0;
            r->p++;
            continue;
        }
        case '|':
            putc_(r, '|');
            r->atom = A_NONE;
            r->p++;
            continue;
        case '*':
        case '+':
        case '?':
            if ((rc = quantifier(r, 1))) return rc;
            continue;
        case '{': {
            size_t len;
            if ((rc = repeat_len(r, &len))) return rc;
            if (len) {
                if ((rc = quantifier(r, len))) return rc;
            } else {
                emit_char(r, '{');
                r->p++;
            }
            continue;
        }
        case '^':
        case '$':
            if (r->flags & F_MULTI) return refuse(r, "multi-line `%c` ((?m)) has no POSIX equivalent", c);
            putc_(r, (char)c);
            r->atom = A_ASSERT;
            r->p++;
            continue;
        case '.': {
            cset_t all;
            memset(&all, 0, sizeof all);
            cs_range(&all, 1, 255);
            if (!(r->flags & F_DOTNL)) all.bit['\n' >> 3] &= (unsigned char)~(1u << ('\n' & 7));
            emit_set(r, &all);
            r->p++;
            continue;
        }
        case '[':
            r->p++;
            if ((rc = parse_class(r))) return rc;
            continue;
        case '\\': {
            int e = (unsigned char)r->p[1];
            if (e && strchr("dDsSwW", e)) {
                cset_t s;
                memset(&s, 0, sizeof s);
                perl_class(e, &s);
                emit_set(r, &s);
                r->p += 2;
                continue;
            }
            if (e == 'b' || e == 'B') {
                /* glibc's \b and \B: ASCII word characters in the C locale,
                 * as RE2's. */
                put(r, r->p, 2);
                r->atom = A_ASSERT;
                r->p += 2;
                continue;
            }
            if (e == 'A' || e == 'z') {
                putc_(r, e == 'A' ? '^' : '$');
                r->atom = A_ASSERT;
                r->p += 2;
                continue;
            }
            if (e == 'p' || e == 'P')
                return refuse(r, "Unicode character classes (\\p, \\P) have no POSIX equivalent");
            if (e == 'C') return refuse(r, "invalid escape sequence: `\\C`");
            if (e == 'Q') {
                const char *q = r->p + 2, *end = strstr(q, "\\E");
                const char *stop = end ? end : q + strlen(q);
                while (q < stop) {
                    unsigned char b = (unsigned char)*q;
                    if (b >= 0x80) {
                        int n = utf8_len((const unsigned char *)q);
                        if (!n || q + n > stop) return refuse(r, "invalid UTF-8");
                        begin_atom(r);
                        put(r, q, (size_t)n);
                        r->atom_multibyte = 1;
                        q += n;
                    } else {
                        emit_char(r, b);
                        q++;
                    }
                }
                r->p = end ? end + 2 : stop;
                continue;
            }
            unsigned cp;
            r->p++;
            if ((rc = parse_escape(r, &cp))) return rc;
            if ((rc = emit_rune(r, cp))) return rc;
            continue;
        }
        default:
            if (c >= 0x80) {
                int n = utf8_len((const unsigned char *)r->p);
                if (!n) return refuse(r, "invalid UTF-8");
                begin_atom(r);
                put(r, r->p, (size_t)n);
                r->atom_multibyte = 1;
                r->p += n;
            } else {
                emit_char(r, c);
                r->p++;
            }
            continue;
        }
    }
    if (r->atom_anyrune) expand_rune(r);
    if (r->depth) return refuse(r, "missing closing ): `%s`", r->src);
    return 0;
}

int promql_regex_translate(const char *re2, char *out, size_t outcap, promql_regex_groups_t *groups,
                           char *why, size_t whycap)
{
    rx_t r;
    memset(&r, 0, sizeof r);
    r.src = r.p = re2;
    r.out = out;
    r.cap = outcap;
    r.why = why;
    r.whycap = whycap;
    r.flags = F_DOTNL; /* Prometheus 3 wraps every pattern in (?s:...) */
    r.groups = groups;
    if (groups) memset(groups, 0, sizeof *groups);
    if (why && whycap) why[0] = 0;
    if (out && outcap) out[0] = 0;
    int rc = translate(&r);
    if (rc) return rc;
    /* The store takes at most 1024 bytes (tsdb_regex_check): a longer
     * translation is refused as such, whatever the buffer. */
    if ((r.overflow && outcap > 1024) || r.len > 1024)
        return refuse(&r, "pattern longer than 1024 bytes once translated");
    if (r.overflow || !out || outcap == 0) return STRATA_EBUFSMALL;
    out[r.len] = 0;
    return tsdb_regex_check(out, why, whycap);
}

int promql_regex_to_posix(const char *re2, char *out, size_t outcap, int *icase, char *why, size_t whycap)
{
    if (icase) *icase = 0; /* (?i) is spelled out as [aA] classes */
    return promql_regex_translate(re2, out, outcap, NULL, why, whycap);
}
