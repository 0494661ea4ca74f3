/*
 * index.c: label interning, the head's inverted index and matchers.
 *
 * Label strings are interned once (every series with namespace="prod"
 * shares one copy) and referred to by 32-bit symbol ids.  The head's
 * postings map a (name, value) symbol pair to the sorted refs carrying it;
 * a per-name list of value symbols answers regex and != matchers without a
 * scan of every pair.  Matcher evaluation is written once against
 * tsdb_index_ops_t so the head and every block share it.
 */
#include "tsdb_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- hashing -------------------------------------------------------------- */

uint64_t tsdb_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    /* FNV-1a with a final avalanche: short label strings, no dependency. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* ---- symbol table ----------------------------------------------------------- */

int tsdb_symtab_init(tsdb_symtab_t *st)
{
    memset(st, 0, sizeof *st);
    st->strings = strata_arena_new(256 * 1024);
    st->nslots = 1024;
    st->slots = calloc(st->nslots, sizeof *st->slots);
    if (!st->strings || !st->slots) {
        tsdb_symtab_free(st);
        return STRATA_ENOMEM;
    }
    return 0;
}

void tsdb_symtab_free(tsdb_symtab_t *st)
{
    for (uint32_t c = 0; c < TSDB_SYM_MAX_CHUNKS && st->chunks[c]; c++) free(st->chunks[c]);
    free(st->slots);
    strata_arena_free(st->strings);
    memset(st, 0, sizeof *st);
}

int tsdb_symtab_find(const tsdb_symtab_t *st, const char *s, uint32_t *id)
{
    size_t mask = st->nslots - 1, i = tsdb_hash_bytes(s, strlen(s), 0) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t v = st->slots[i];
        if (!v) return 0;
        if (strcmp(tsdb_symtab_str(st, v - 1), s) == 0) {
            *id = v - 1;
            return 1;
        }
    }
}

static int symtab_grow(tsdb_symtab_t *st)
{
    size_t ns = st->nslots * 2, mask = ns - 1;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return STRATA_ENOMEM;
    for (size_t j = 0; j < st->nslots; j++) {
        uint32_t v = st->slots[j];
        if (!v) continue;
        size_t i = tsdb_hash_bytes(tsdb_symtab_str(st, v - 1), tsdb_symtab_len(st, v - 1), 0) & mask;
        while (slots[i]) i = (i + 1) & mask;
        slots[i] = v;
    }
    free(st->slots);
    st->slots = slots;
    st->nslots = ns;
    return 0;
}

int tsdb_symtab_intern(tsdb_symtab_t *st, const char *s, uint32_t *id)
{
    if (tsdb_symtab_find(st, s, id)) return 0;
    if (st->n >= UINT32_MAX - 1) return STRATA_ELIMIT;
    if ((st->n + 1) * 4 >= st->nslots * 3) {
        int rc = symtab_grow(st);
        if (rc) return rc;
    }
    uint32_t c = st->n >> TSDB_SYM_CHUNK_BITS;
    if (!st->chunks[c]) {
        st->chunks[c] = calloc(TSDB_SYM_CHUNK, sizeof(char *));
        if (!st->chunks[c]) return STRATA_ENOMEM;
        st->bytes += TSDB_SYM_CHUNK * sizeof(char *);
    }
    size_t len = strlen(s);
    if (len > UINT32_MAX) return STRATA_ELIMIT;
    char *copy = strata_arena_alloc(st->strings, 4 + len + 1);
    if (!copy) return STRATA_ENOMEM;
    uint32_t len32 = (uint32_t)len;
    memcpy(copy, &len32, 4);
    copy += 4;
    memcpy(copy, s, len + 1);
    st->bytes += 4 + len + 1;
    st->chunks[c][st->n & (TSDB_SYM_CHUNK - 1)] = copy;
    size_t mask = st->nslots - 1, i = tsdb_hash_bytes(s, len, 0) & mask;
    while (st->slots[i]) i = (i + 1) & mask;
    st->slots[i] = st->n + 1;
    *id = st->n++;
    return 0;
}

/* ---- head postings ------------------------------------------------------------ */

void tsdb_head_index_init(tsdb_head_index_t *hi) { memset(hi, 0, sizeof *hi); }

void tsdb_head_index_free(tsdb_head_index_t *hi)
{
    for (size_t i = 0; i < hi->npairs_slots; i++)
        if (hi->pairs[i].name != UINT32_MAX && hi->pairs[i].p.cap > 1) free(hi->pairs[i].p.u.ids);
    free(hi->pairs);
    for (size_t i = 0; i < hi->nnames; i++) free(hi->names[i].vals);
    free(hi->names);
    free(hi->name_slots);
    memset(hi, 0, sizeof *hi);
}

static size_t pair_slot(const tsdb_head_index_t *hi, uint32_t name, uint32_t value)
{
    size_t mask = hi->npairs_slots - 1;
    size_t i = hash_u64(((uint64_t)name << 32) | value) & mask;
    while (hi->pairs[i].name != UINT32_MAX && (hi->pairs[i].name != name || hi->pairs[i].value != value))
        i = (i + 1) & mask;
    return i;
}

const tsdb_postings_t *tsdb_head_index_get(const tsdb_head_index_t *hi, uint32_t name, uint32_t value)
{
    if (!hi->npairs_slots) return NULL;
    size_t i = pair_slot(hi, name, value);
    return hi->pairs[i].name == UINT32_MAX ? NULL : &hi->pairs[i].p;
}

static size_t name_slot(const tsdb_head_index_t *hi, uint32_t name)
{
    size_t mask = hi->nname_slots - 1, i = hash_u64(name) & mask;
    while (hi->name_slots[i] && hi->names[hi->name_slots[i] - 1].name != name) i = (i + 1) & mask;
    return i;
}

const struct tsdb_lname *tsdb_head_index_name(const tsdb_head_index_t *hi, uint32_t name)
{
    if (!hi->nname_slots) return NULL;
    size_t i = name_slot(hi, name);
    return hi->name_slots[i] ? &hi->names[hi->name_slots[i] - 1] : NULL;
}

static int grow_u32(uint32_t **a, uint32_t *cap, uint32_t need, size_t *bytes)
{
    if (need <= *cap) return 0;
    uint32_t nc = *cap ? *cap * 2 : 4;
    while (nc < need) nc *= 2;
    uint32_t *na = realloc(*a, (size_t)nc * sizeof *na);
    if (!na) return STRATA_ENOMEM;
    *bytes += (size_t)(nc - *cap) * sizeof *na;
    *a = na;
    *cap = nc;
    return 0;
}

static int pairs_grow(tsdb_head_index_t *hi)
{
    size_t old = hi->npairs_slots, ns = old ? old * 2 : 1024;
    struct tsdb_pentry *np = malloc(ns * sizeof *np), *op = hi->pairs;
    if (!np) return STRATA_ENOMEM;
    for (size_t i = 0; i < ns; i++) np[i].name = UINT32_MAX;
    hi->pairs = np;
    hi->npairs_slots = ns;
    for (size_t i = 0; i < old; i++) {
        if (op[i].name == UINT32_MAX) continue;
        np[pair_slot(hi, op[i].name, op[i].value)] = op[i];
    }
    free(op);
    hi->bytes += (ns - old) * sizeof *np;
    return 0;
}

static int names_grow(tsdb_head_index_t *hi)
{
    size_t old = hi->nname_slots, ns = old ? old * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof *slots), *os = hi->name_slots;
    if (!slots) return STRATA_ENOMEM;
    hi->name_slots = slots;
    hi->nname_slots = ns;
    for (size_t i = 0; i < old; i++)
        if (os[i]) slots[name_slot(hi, hi->names[os[i] - 1].name)] = os[i];
    free(os);
    return 0;
}

/* Refs usually arrive ascending (new series get the next ref), so appending
 * is the fast path; replay may insert out of order. */
static int postings_add(tsdb_postings_t *p, uint32_t ref, size_t *bytes)
{
    if (p->n == 0) {
        p->u.one = ref;
        p->n = 1;
        if (!p->cap) p->cap = 1;
        return 0;
    }
    if (p->cap <= 1) {
        uint32_t one = p->u.one, *ids = malloc(4 * sizeof *ids);
        if (!ids) return STRATA_ENOMEM;
        ids[0] = one;
        p->u.ids = ids;
        p->cap = 4;
        *bytes += 4 * sizeof *ids;
    } else if (p->n == p->cap) {
        uint32_t nc = p->cap * 2, *ids = realloc(p->u.ids, (size_t)nc * sizeof *ids);
        if (!ids) return STRATA_ENOMEM;
        *bytes += (size_t)(nc - p->cap) * sizeof *ids;
        p->u.ids = ids;
        p->cap = nc;
    }
    uint32_t *ids = p->u.ids;
    size_t pos = p->n;
    if (ids[p->n - 1] >= ref) {
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ids[mid] < ref)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < p->n && ids[lo] == ref) return 0;
        pos = lo;
        memmove(ids + pos + 1, ids + pos, (p->n - pos) * sizeof *ids);
    }
    ids[pos] = ref;
    p->n++;
    return 0;
}

int tsdb_head_index_add(tsdb_head_index_t *hi, uint32_t name, uint32_t value, uint32_t ref)
{
    int rc;
    if ((hi->npairs + 1) * 4 >= hi->npairs_slots * 3 && (rc = pairs_grow(hi))) return rc;
    size_t i = pair_slot(hi, name, value);
    struct tsdb_pentry *e = &hi->pairs[i];
    if (e->name == UINT32_MAX) {
        /* a new value of this name */
        if ((hi->nnames + 1) * 2 >= hi->nname_slots && (rc = names_grow(hi))) return rc;
        size_t ns = name_slot(hi, name);
        if (!hi->name_slots[ns]) {
            if (hi->nnames == hi->names_cap) {
                size_t nc = hi->names_cap ? hi->names_cap * 2 : 16;
                struct tsdb_lname *nn = realloc(hi->names, nc * sizeof *nn);
                if (!nn) return STRATA_ENOMEM;
                hi->names = nn;
                hi->names_cap = nc;
            }
            hi->names[hi->nnames] = (struct tsdb_lname){ .name = name };
            hi->name_slots[ns] = (uint32_t)++hi->nnames;
        }
        struct tsdb_lname *ln = &hi->names[hi->name_slots[ns] - 1];
        if ((rc = grow_u32(&ln->vals, &ln->cap, ln->n + 1, &hi->bytes))) return rc;
        ln->vals[ln->n++] = value;
        e->name = name;
        e->value = value;
        memset(&e->p, 0, sizeof e->p);
        hi->npairs++;
    }
    return postings_add(&e->p, ref, &hi->bytes);
}

/* ---- matchers ------------------------------------------------------------------- */

static int is_meta(char c) { return c && strchr(".^$*+?()[]{}\\|", c) != NULL; }

static int literal(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_meta(s[i])) return 0;
    return 1;
}

/* Limits measured with glibc 2.36 regcomp (REG_EXTENDED): stacked repetition
 * ("x++") and more than a few repeated groups that repeat inside ("(x?)+" ten
 * times: seconds) explode; plain quantifiers ("x?" x 20, ".*a.*b.*...") and
 * modest bounds ("x{1,20}" x 40) stay well under a millisecond. */
#define RE_MAX_LEN          1024
#define RE_MAX_BOUND        100
#define RE_MAX_NEST         4 /* quantifiers applied within one another */
#define RE_MAX_NESTED_REPS  4 /* repeated groups that contain a repetition */
#define RE_MAX_GROUP_DEPTH  32
/* Bounded repetition is compiled as that many copies of its atom: the sum over
 * a pattern of (upper bound x atom width) is what regcomp builds and regexec
 * walks per value.  ".{0,100}" 120 times (12000) took seconds and ~60 MiB;
 * 400 keeps the worst case to a few ms. */
#define RE_MAX_REPEAT_TOTAL 400

static int re_refuse(char *why, size_t cap, const char *reason)
{
    if (why && cap) snprintf(why, cap, "%s", reason);
    return STRATA_EBADREGEX;
}

int tsdb_regex_check(const char *re, char *why, size_t cap)
{
    if (strlen(re) > RE_MAX_LEN) return re_refuse(why, cap, "pattern longer than 1024 bytes");
    int group[RE_MAX_GROUP_DEPTH];   /* deepest repetition inside each open group */
    long gatoms[RE_MAX_GROUP_DEPTH]; /* atoms seen before each open group */
    int gbound[RE_MAX_GROUP_DEPTH];  /* whether the enclosing group had a bounded repetition so far */
    int sp = 0, cur = 0, atom = -1, after_quant = 0, nested_reps = 0;
    int cur_bound = 0, inner_bound = 0; /* a bounded repetition in the current group, in the last atom */
    long atom_width = 1, repeat_total = 0, atoms = 0;
    for (const char *p = re; *p; p++) {
        int c = (unsigned char)*p;
        int bound = c == '{' && ((p[1] >= '0' && p[1] <= '9') || p[1] == ',');
        if (c == '*' || c == '+' || c == '?' || bound) {
            if (after_quant) return re_refuse(why, cap, "stacked repetition operators");
            if (bound) {
                const char *q = p + 1;
                long most = 0;
                while ((*q >= '0' && *q <= '9') || *q == ',') {
                    if (*q == ',') {
                        q++;
                        continue;
                    }
                    char *end;
                    long n = strtol(q, &end, 10);
                    if (n > RE_MAX_BOUND) return re_refuse(why, cap, "repetition bound over 100");
                    if (n > most) most = n;
                    q = end;
                }
                repeat_total += most * atom_width;
                if (repeat_total > RE_MAX_REPEAT_TOTAL)
                    return re_refuse(why, cap, "bounded repetitions add up to more than 400");
                /* A group repeating one level inside, as "([0-9a-f]+-){4}"
                 * in a UUID, costs regcomp little (measured: "(a*a*){100}"
                 * 20 ms); a bound over a bound multiplies the copies and
                 * "((a*)*){20}" took 6 s, so those stay refused. */
                if (atom > 1 || inner_bound)
                    return re_refuse(why, cap, "bounded repetition of a group that repeats");
                cur_bound = 1;
                p = *q == '}' ? q : q - 1;
            }
            int depth = (atom < 0 ? 0 : atom) + 1;
            if (depth > RE_MAX_NEST) return re_refuse(why, cap, "repetition nested more than 4 deep");
            if (atom > 0 && ++nested_reps > RE_MAX_NESTED_REPS)
                return re_refuse(why, cap, "more than 4 repeated groups that repeat inside");
            if (depth > cur) cur = depth;
            atom = depth;
            after_quant = 1;
            continue;
        }
        after_quant = 0;
        atom_width = 1;
        if (c != ')') inner_bound = 0;
        if (c == '\\' && p[1]) {
            p++;
            atom = 0;
            atoms++;
        } else if (c == '[') { /* a bracket expression is one atom; ']' first is literal */
            const char *q = p + 1;
            if (*q == '^') q++;
            if (*q == ']') q++;
            while (*q && *q != ']') q++;
            if (!*q) return 0; /* unterminated: regcomp reports it */
            p = q;
            atom = 0;
            atoms++;
        } else if (c == '(') {
            if (sp == RE_MAX_GROUP_DEPTH) return re_refuse(why, cap, "groups nested more than 32 deep");
            gatoms[sp] = atoms;
            gbound[sp] = cur_bound;
            cur_bound = 0;
            group[sp++] = cur;
            cur = 0;
            atom = -1;
        } else if (c == ')') {
            int inner = cur;
            /* Its atoms (a bracket expression is one however long: the
             * UTF-8 alternatives of `.` are 10 atoms, not 70 bytes). */
            if (sp) atom_width = atoms - gatoms[sp - 1] + 1; /* and the group's own node */
            inner_bound = cur_bound;
            if (sp) cur_bound |= gbound[sp - 1];
            cur = sp ? group[--sp] : 0;
            if (inner > cur) cur = inner;
            atom = inner;
        } else if (c == '|') {
            atom = -1;
        } else {
            atom = 0;
            atoms++;
        }
    }
    return 0;
}

static int compile_one(const tsdb_matcher_t *in, tsdb_cmatcher_t *m)
{
    memset(m, 0, sizeof *m);
    m->op = in->op;
    m->name = in->name;
    m->value = in->value ? in->value : "";
    const char *v = m->value;
    size_t len = strlen(v);
    if (m->op == TSDB_MATCH_EQ || m->op == TSDB_MATCH_NEQ) {
        m->kind = TSDB_MK_SET;
        m->alts = malloc(sizeof(char *));
        if (!m->alts || !(m->alts[0] = strdup(v))) return STRATA_ENOMEM;
        m->nalts = 1;
    } else if (len >= 2 && strcmp(v + len - 2, ".*") == 0 && literal(v, len - 2)) {
        m->kind = TSDB_MK_PREFIX;
        m->alts = malloc(sizeof(char *));
        if (!m->alts || !(m->alts[0] = strndup(v, len - 2))) return STRATA_ENOMEM;
        m->nalts = 1;
    } else {
        /* a|b|c of plain literals: looked up directly instead of scanning values */
        int set = 1;
        for (size_t i = 0; i < len; i++)
            if (v[i] != '|' && is_meta(v[i])) {
                set = 0;
                break;
            }
        if (set) {
            m->kind = TSDB_MK_SET;
            size_t na = 1;
            for (size_t i = 0; i < len; i++) na += v[i] == '|';
            m->alts = calloc(na, sizeof(char *));
            if (!m->alts) return STRATA_ENOMEM;
            const char *p = v;
            for (size_t a = 0; a < na; a++) {
                const char *bar = strchr(p, '|');
                size_t l = bar ? (size_t)(bar - p) : strlen(p);
                if (!(m->alts[a] = strndup(p, l))) return STRATA_ENOMEM;
                m->nalts++;
                p += l + 1;
            }
        } else {
            m->kind = TSDB_MK_REGEX;
            int rc = tsdb_regex_check(v, NULL, 0);
            if (rc) return rc;
            char *anch = malloc(len + 5);
            if (!anch) return STRATA_ENOMEM;
            sprintf(anch, "^(%s)$", v);
            rc = regcomp(&m->re, anch, REG_EXTENDED | REG_NOSUB);
            free(anch);
            if (rc != 0) return STRATA_EBADREGEX;
            m->has_re = 1;
        }
    }
    m->matches_empty = tsdb_cmatcher_match(m, "");
    return 0;
}

static int raw_match(const tsdb_cmatcher_t *m, const char *v)
{
    switch (m->kind) {
    case TSDB_MK_SET:
        for (size_t i = 0; i < m->nalts; i++)
            if (strcmp(m->alts[i], v) == 0) return 1;
        return 0;
    case TSDB_MK_PREFIX: return strncmp(v, m->alts[0], strlen(m->alts[0])) == 0;
    default: return regexec(&m->re, v, 0, NULL, 0) == 0;
    }
}

int tsdb_cmatcher_match(const tsdb_cmatcher_t *m, const char *v)
{
    int r = raw_match(m, v);
    return (m->op == TSDB_MATCH_NEQ || m->op == TSDB_MATCH_NRE) ? !r : r;
}

void tsdb_matchers_free(tsdb_cmatcher_t *m, size_t n)
{
    if (!m) return;
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 0; a < m[i].nalts; a++) free(m[i].alts[a]);
        free(m[i].alts);
        if (m[i].has_re) regfree(&m[i].re);
    }
    free(m);
}

int tsdb_matchers_compile(const tsdb_matcher_t *in, size_t n, tsdb_cmatcher_t **out)
{
    *out = NULL;
    if (!n || !in) return STRATA_EINVAL;
    tsdb_cmatcher_t *m = calloc(n, sizeof *m);
    if (!m) return STRATA_ENOMEM;
    int nonempty = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in[i].name) {
            tsdb_matchers_free(m, i);
            return STRATA_EINVAL;
        }
        int rc = compile_one(&in[i], &m[i]);
        if (rc) {
            tsdb_matchers_free(m, i + 1);
            return rc;
        }
        nonempty |= !m[i].matches_empty;
    }
    if (!nonempty) {
        tsdb_matchers_free(m, n);
        return STRATA_EINVAL;
    }
    *out = m;
    return 0;
}

/* ---- evaluation --------------------------------------------------------------------- */

typedef struct idvec {
    uint32_t *v;
    size_t n, cap;
} idvec_t;

static int idvec_push(idvec_t *a, const uint32_t *ids, size_t n)
{
    if (!n) return 0;
    if (a->n + n > a->cap) {
        size_t nc = a->cap ? a->cap : 64;
        while (nc < a->n + n) nc *= 2;
        uint32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    memcpy(a->v + a->n, ids, n * sizeof *ids);
    a->n += n;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void idvec_sort_unique(idvec_t *a)
{
    if (a->n < 2) return;
    qsort(a->v, a->n, sizeof *a->v, cmp_u32);
    size_t w = 1;
    for (size_t i = 1; i < a->n; i++)
        if (a->v[i] != a->v[w - 1]) a->v[w++] = a->v[i];
    a->n = w;
}

int64_t tsdb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walking a label's values (a regex over every value, say) stops at the
 * matcher's deadline: checked at the first value and every 16th after. */
static int past_deadline(const tsdb_cmatcher_t *m, size_t *walked)
{
    return m->deadline_ms && ((*walked)++ & 15) == 0 && tsdb_mono_ms() > m->deadline_ms;
}

struct collect_ctx {
    const tsdb_cmatcher_t *m;
    int want;
    idvec_t *acc;
    int rc;
    size_t walked;
};

/* Collects the postings of values whose match result equals want. */
static int collect_cb(void *vctx, const char *value, const uint32_t *ids, size_t n)
{
    struct collect_ctx *c = vctx;
    if (past_deadline(c->m, &c->walked)) return c->rc = STRATA_ETIMEOUT;
    if (tsdb_cmatcher_match(c->m, value) == c->want) {
        c->rc = idvec_push(c->acc, ids, n);
        return c->rc;
    }
    return 0;
}

/* The ids whose value of m->name is accepted (want = 1) or rejected (want = 0)
 * by m, among series that have the label at all. */
static int ids_for(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m, int want,
                   idvec_t *acc)
{
    /* Fast path: a SET matcher's raw matches are exactly its alternatives. */
    int positive = m->op == TSDB_MATCH_EQ || m->op == TSDB_MATCH_RE;
    size_t lists = 0;
    if (m->kind == TSDB_MK_SET && want == positive) {
        for (size_t a = 0; a < m->nalts; a++) {
            if (!m->alts[a][0]) continue;
            const uint32_t *ids;
            size_t n;
            ops->lookup(idx, m->name, m->alts[a], &ids, &n);
            if (!n) continue;
            int rc = idvec_push(acc, ids, n);
            if (rc) return rc;
            lists++;
        }
    } else {
        struct collect_ctx c = { m, want, acc, 0, 0 };
        ops->each_value(idx, m->name, collect_cb, &c);
        if (c.rc) return c.rc;
        lists = 2;
    }
    if (lists > 1) idvec_sort_unique(acc); /* one postings list is sorted and unique already */
    return 0;
}

/* Postings a literal matcher (name="v" or name=~"a|b") reads, or SIZE_MAX when
 * it has to walk the label's values. */
static size_t literal_cost(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m)
{
    if (m->kind != TSDB_MK_SET || !(m->op == TSDB_MATCH_EQ || m->op == TSDB_MATCH_RE)) return SIZE_MAX;
    size_t total = 0;
    for (size_t a = 0; a < m->nalts; a++) {
        if (!m->alts[a][0]) continue;
        const uint32_t *ids;
        size_t n;
        ops->lookup(idx, m->name, m->alts[a], &ids, &n);
        total += n;
    }
    return total;
}

static int sorted_contains(const uint32_t *ids, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id;
}

/* Keeps the candidates found in one of a literal matcher's postings lists:
 * binary searches instead of copying and sorting a list much longer than
 * the candidates (a tenant's or a metric name's postings, say). */
static void filter_literal(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m,
                           idvec_t *res)
{
    size_t w = 0;
    for (size_t i = 0; i < res->n; i++) {
        int hit = 0;
        for (size_t a = 0; a < m->nalts && !hit; a++) {
            if (!m->alts[a][0]) continue;
            const uint32_t *ids;
            size_t n;
            ops->lookup(idx, m->name, m->alts[a], &ids, &n);
            hit = sorted_contains(ids, n, res->v[i]);
        }
        if (hit) res->v[w++] = res->v[i];
    }
    res->n = w;
}

/* Drops the candidates carrying a value the matcher rejects, walking the
 * label's values but touching only the candidates, never collecting and
 * sorting every series that has the label (name="" over workload_id, say). */
struct reject_ctx {
    const tsdb_cmatcher_t *m;
    idvec_t *res;
    unsigned char *gone;
    int rc;
    size_t walked;
};

static int reject_cb(void *vctx, const char *value, const uint32_t *ids, size_t n)
{
    struct reject_ctx *c = vctx;
    if (past_deadline(c->m, &c->walked)) return c->rc = STRATA_ETIMEOUT;
    if (tsdb_cmatcher_match(c->m, value) != 0) return 0;
    for (size_t i = 0; i < c->res->n; i++)
        if (!c->gone[i] && sorted_contains(ids, n, c->res->v[i])) c->gone[i] = 1;
    return 0;
}

/* Candidates few enough to search for, rather than intersect with, a list. */
#define TSDB_SMALL_CANDIDATES 256

int tsdb_index_select(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m, size_t nm,
                      uint32_t **out, size_t *nout)
{
    idvec_t res = { 0 }, tmp = { 0 };
    int have = 0, rc = 0;
    /* Matchers that reject "" produce a set; intersect those first, the
     * literal ones with the shortest postings first. */
    size_t *order = malloc((nm ? nm : 1) * sizeof *order), *cost = malloc((nm ? nm : 1) * sizeof *cost);
    size_t npos = 0;
    if (!order || !cost) {
        rc = STRATA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nm; i++) {
        if (m[i].matches_empty) continue;
        size_t c = literal_cost(ops, idx, &m[i]), j = npos++;
        while (j > 0 && cost[j - 1] > c) {
            order[j] = order[j - 1];
            cost[j] = cost[j - 1];
            j--;
        }
        order[j] = i;
        cost[j] = c;
    }
    for (size_t k = 0; k < npos && (!have || res.n); k++) {
        const tsdb_cmatcher_t *mk = &m[order[k]];
        if (have && cost[k] != SIZE_MAX && res.n <= TSDB_SMALL_CANDIDATES && res.n * 8 < cost[k]) {
            filter_literal(ops, idx, mk, &res);
            continue;
        }
        tmp.n = 0;
        if ((rc = ids_for(ops, idx, mk, 1, &tmp))) goto out;
        if (!have) {
            idvec_t t = res;
            res = tmp;
            tmp = t;
            have = 1;
            continue;
        }
        size_t w = 0, a = 0, b = 0;
        while (a < res.n && b < tmp.n) {
            if (res.v[a] < tmp.v[b])
                a++;
            else if (res.v[a] > tmp.v[b])
                b++;
            else {
                res.v[w++] = res.v[a];
                a++;
                b++;
            }
        }
        res.n = w;
    }
    /* Matchers that accept "": remove the series whose value they reject. */
    for (size_t i = 0; i < nm && res.n; i++) {
        if (!m[i].matches_empty) continue;
        if (res.n <= TSDB_SMALL_CANDIDATES) {
            unsigned char gone[TSDB_SMALL_CANDIDATES] = { 0 };
            struct reject_ctx c = { &m[i], &res, gone, 0, 0 };
            ops->each_value(idx, m[i].name, reject_cb, &c);
            if ((rc = c.rc)) goto out;
            size_t w = 0;
            for (size_t a = 0; a < res.n; a++)
                if (!gone[a]) res.v[w++] = res.v[a];
            res.n = w;
            continue;
        }
        tmp.n = 0;
        if ((rc = ids_for(ops, idx, &m[i], 0, &tmp))) goto out;
        size_t w = 0, b = 0;
        for (size_t a = 0; a < res.n; a++) {
            while (b < tmp.n && tmp.v[b] < res.v[a]) b++;
            if (b < tmp.n && tmp.v[b] == res.v[a]) continue;
            res.v[w++] = res.v[a];
        }
        res.n = w;
    }
out:
    free(order);
    free(cost);
    free(tmp.v);
    if (rc) {
        free(res.v);
        *out = NULL;
        *nout = 0;
        return rc;
    }
    *out = res.v;
    *nout = res.n;
    return 0;
}

int tsdb_label_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return c;
        if ((c = strcmp(a[i].value, b[i].value))) return c;
    }
    return na < nb ? -1 : na > nb;
}
