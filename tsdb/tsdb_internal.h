/*
 * tsdb_internal.h: what every part of the engine shares (internal to tsdb/):
 * symbols, head postings, matchers and the index interface that matcher
 * evaluation runs over (head or block).  Blocks are in block_internal.h, the
 * database object in db_internal.h; docs/storage.md lists the files.
 *
 * Series ids inside one index are uint32 (head refs, block-local ordinals):
 * half the postings memory of uint64, and four billion series is far beyond
 * what one node holds.
 */
#ifndef TSDB_INTERNAL_H
#define TSDB_INTERNAL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "encoding.h"
#include "strata_arena.h"
#include "tsdb.h"

/* ---- test-only fault injection -------------------------------------------
 * tsdb_fail_countdown is 0 outside tests.  A test sets it to N > 0: every
 * step of a block write (create the temp dir, open/write/fsync a file, fsync
 * the dir, rename, fsync the parent) and of a cut (open the new block, WAL
 * rotation, checkpoint) calls tsdb_fail_step(), and the Nth one fails with
 * STRATA_ENOSPC as if the disk were full (the countdown then stays 0).
 * tsdb_fail_steps counts the steps taken, so a test can learn how many a cut
 * has and fail each in turn; tsdb_fail_step_hook (when set) is called with
 * that count at each step, e.g. to append while a cut writes its blocks. */
extern _Atomic int tsdb_fail_countdown;
extern _Atomic long tsdb_fail_steps;
extern void (*tsdb_fail_step_hook)(long step);
int tsdb_fail_step(void);

static inline int64_t tsdb_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- symbols ------------------------------------------------------------
 * Strings live in an arena for the db's lifetime; ids index a two-level
 * table whose chunks never move, so readers resolve ids without a lock.
 * Each string is preceded by its length (4 bytes), so the append path can
 * compare label strings by length and words instead of strcmp. */
#define TSDB_SYM_CHUNK_BITS 16
#define TSDB_SYM_CHUNK      (1u << TSDB_SYM_CHUNK_BITS)
#define TSDB_SYM_MAX_CHUNKS 65536u

typedef struct tsdb_symtab {
    const char **chunks[TSDB_SYM_MAX_CHUNKS];
    uint32_t n;
    uint32_t *slots; /* open addressing, id + 1, 0 = empty */
    size_t nslots;
    strata_arena_t *strings;
    size_t bytes;
} tsdb_symtab_t;

int tsdb_symtab_init(tsdb_symtab_t *st);
void tsdb_symtab_free(tsdb_symtab_t *st);
/* 0 and *id, or STRATA_ENOMEM/STRATA_ELIMIT. Caller serialises writers. */
int tsdb_symtab_intern(tsdb_symtab_t *st, const char *s, uint32_t *id);
/* 1 when present (and *id), else 0. */
int tsdb_symtab_find(const tsdb_symtab_t *st, const char *s, uint32_t *id);
static inline const char *tsdb_symtab_str(const tsdb_symtab_t *st, uint32_t id)
{
    return st->chunks[id >> TSDB_SYM_CHUNK_BITS][id & (TSDB_SYM_CHUNK - 1)];
}
static inline size_t tsdb_symtab_len(const tsdb_symtab_t *st, uint32_t id)
{
    uint32_t n;
    __builtin_memcpy(&n, tsdb_symtab_str(st, id) - 4, 4);
    return n;
}
uint64_t tsdb_hash_bytes(const void *p, size_t n, uint64_t seed);

/* ---- head postings: (name, value) symbol pair -> sorted refs ------------ */
typedef struct tsdb_postings {
    uint32_t n, cap;
    union {
        uint32_t one;
        uint32_t *ids;
    } u; /* inline while cap <= 1 */
} tsdb_postings_t;

static inline const uint32_t *tsdb_postings_ids(const tsdb_postings_t *p)
{
    return p->cap <= 1 ? &p->u.one : p->u.ids;
}

typedef struct tsdb_head_index {
    struct tsdb_pentry {
        uint32_t name, value;
        tsdb_postings_t p;
    } * pairs;
    size_t npairs_slots, npairs;
    struct tsdb_lname {
        uint32_t name;
        uint32_t n, cap;
        uint32_t *vals;
    } * names;
    size_t nnames, names_cap;
    uint32_t *name_slots; /* name sym -> index + 1 into names */
    size_t nname_slots;
    size_t bytes;
} tsdb_head_index_t;

void tsdb_head_index_init(tsdb_head_index_t *hi);
void tsdb_head_index_free(tsdb_head_index_t *hi);
int tsdb_head_index_add(tsdb_head_index_t *hi, uint32_t name, uint32_t value, uint32_t ref);
const tsdb_postings_t *tsdb_head_index_get(const tsdb_head_index_t *hi, uint32_t name, uint32_t value);
const struct tsdb_lname *tsdb_head_index_name(const tsdb_head_index_t *hi, uint32_t name);

/* ---- matchers ----------------------------------------------------------- */
enum { TSDB_MK_SET, TSDB_MK_PREFIX, TSDB_MK_REGEX };

typedef struct tsdb_cmatcher {
    enum tsdb_match_op op;
    const char *name, *value;
    int kind;    /* how the value is matched (EQ/NEQ are a one-element SET) */
    char **alts; /* SET alternatives, PREFIX prefix in alts[0] */
    size_t nalts;
    regex_t re;
    int has_re;
    int matches_empty;   /* whether the matcher, op applied, accepts "" */
    int64_t deadline_ms; /* tsdb_mono_ms() past which walking the label's values
                            stops with STRATA_ETIMEOUT; 0 = none */
} tsdb_cmatcher_t;

/* Compiles; STRATA_EBADREGEX on a bad regex, STRATA_EINVAL when every matcher
 * matches the empty string. */
int tsdb_matchers_compile(const tsdb_matcher_t *m, size_t n, tsdb_cmatcher_t **out);
void tsdb_matchers_free(tsdb_cmatcher_t *m, size_t n);
/* The matcher with its op applied: 1 = accepts v. */
int tsdb_cmatcher_match(const tsdb_cmatcher_t *m, const char *v);

/* What matcher evaluation needs from an index (head or block). */
typedef int (*tsdb_value_cb)(void *ctx, const char *value, const uint32_t *ids, size_t n);
typedef struct tsdb_index_ops {
    /* Calls cb for every value of label `name` (stops on a nonzero return). */
    int (*each_value)(const void *idx, const char *name, tsdb_value_cb cb, void *ctx);
    /* Postings of name=value, or n = 0. */
    void (*lookup)(const void *idx, const char *name, const char *value, const uint32_t **ids, size_t *n);
} tsdb_index_ops_t;

/* Sorted ids matching every matcher; *out malloc'd (may be NULL when n = 0). */
int tsdb_index_select(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m, size_t nm,
                      uint32_t **out, size_t *nout);

/* Compares two sorted label sets (names, then values, then length). */
int tsdb_label_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb);

#endif
