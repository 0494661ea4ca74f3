/*
 * eval_internal.h: what the evaluator's files (eval.c, eval_call.c,
 * aggregate.c, binop.c) share: the value of a node over all steps, label-set
 * tables, and the evaluation context.
 *
 * Every node is evaluated once for the whole query over a grid of steps, as
 * Prometheus' range evaluation does: an instant vector becomes a list of
 * series, each with points only at the steps where it has a value, so
 * operators walk steps with one cursor per series instead of re-evaluating
 * their arguments per step.  Selectors read the store once for the union of
 * all steps' windows (eval.c).
 */
#ifndef PROMQL_EVAL_INTERNAL_H
#define PROMQL_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "promql_internal.h"

/* The steps a node is evaluated at: start, start + step, ... (n of them). */
typedef struct pq_steps {
    int64_t start, step; /* step > 0 (1 for a single step) */
    size_t n;
} pq_steps_t;

static inline int64_t pq_step_t(const pq_steps_t *s, size_t i) { return s->start + (int64_t)i * s->step; }
static inline size_t pq_step_idx(const pq_steps_t *s, int64_t t)
{
    return (size_t)((t - s->start) / s->step);
}

/* One series of an instant vector over steps (or of a range vector). */
typedef struct pq_series {
    const tsdb_label_t *labels; /* sorted by name, in the arena */
    size_t nl;
    tsdb_sample_t *pts; /* ascending once finished */
    size_t n, cap;
    int unsorted; /* points were appended out of order (merged series) */
} pq_series_t;

/* A set of label sets with a hash index: series of a value, groups of an
 * aggregation, signatures of a vector match. */
typedef struct pq_mat {
    pq_series_t *s;
    size_t n, cap;
    uint32_t *ht; /* open addressing, index + 1; 0 = empty */
    size_t htcap;
} pq_mat_t;

/* A node's value over the steps. */
typedef struct pq_val {
    promql_type_t type;
    double *scalar; /* SCALAR: one value per step */
    pq_mat_t m;     /* VECTOR, MATRIX */
    const char *str;
} pq_val_t;

/* The evaluation. */
typedef struct pq_ev {
    const promql_engine_opts_t *opts;
    strata_arena_t *a;
    char *msg;
    size_t msgcap;
    int64_t qstart, qend; /* the query's start and end (@ start(), @ end()) */
    int64_t lookback;
    uint64_t damaged; /* damaged pages the reads skipped */
    unsigned checks;  /* deadline checks between reads */
    /* Points the evaluation holds (every value it builds stays in the arena
     * until the end), bounded by the budget's sample limit as Prometheus
     * bounds the samples a query holds: 422, never exhaustion. */
    uint64_t points, max_points;
} pq_ev_t;

/* ---- eval.c ------------------------------------------------------------------------- */

int pq_eval(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out);
/* Fails with msg; returns rc. */
int pq_fail(pq_ev_t *ev, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int pq_nomem(pq_ev_t *ev);
/* The budget's deadline, checked now and then between reads. */
int pq_check(pq_ev_t *ev);
/* Unwraps parentheses. */
const promql_node_t *pq_unparen(const promql_node_t *n);

/* Label helpers (labels sorted by name). */
const char *pq_label_get(const tsdb_label_t *l, size_t n, const char *name);
int pq_labels_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb);
/* A copy of l in the arena, without `drop` (may be NULL); NULL on ENOMEM. */
tsdb_label_t *pq_labels_copy(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const char *drop, size_t *nout);
/* l with name set to value (value "" deletes it), in the arena. */
tsdb_label_t *pq_labels_set(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const char *name, const char *value,
                            size_t *nout);
/* l restricted to names (keep = 1) or without names and __name__ (keep = 0). */
tsdb_label_t *pq_labels_filter(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const promql_labels_t *names,
                               int keep, size_t *nout);
/* "{a=\"b\", c=\"d\"}" as Prometheus prints a label set, in the arena. */
char *pq_labels_str(pq_ev_t *ev, const tsdb_label_t *l, size_t n);

/* Series tables.  find_or_add returns the series index or < 0 (ENOMEM);
 * labels are stored as given (must live in the arena). */
int pq_mat_find_or_add(pq_ev_t *ev, pq_mat_t *m, const tsdb_label_t *l, size_t nl, size_t *idx);
int pq_mat_add(pq_ev_t *ev, pq_mat_t *m, const tsdb_label_t *l, size_t nl, size_t *idx);
int pq_push(pq_ev_t *ev, pq_series_t *s, int64_t t, double v);
/* Room for n points in a series that has none yet (one allocation instead of
 * doublings, as Prometheus sizes a series by its steps). */
int pq_reserve(pq_ev_t *ev, pq_series_t *s, size_t n);
/* Sorts merged series' points; two points of one label set at one step are
 * "vector cannot contain metrics with the same labelset" (STRATA_EEXEC);
 * series without points are removed. */
int pq_mat_finish(pq_ev_t *ev, pq_mat_t *m);
/* The series present at step time t: indexes into idx (cap m->n), using and
 * advancing cur (one per series, from 0). */
size_t pq_at_step(const pq_mat_t *m, size_t *cur, int64_t t, uint32_t *idx, double *vals);

/* ---- eval_call.c / aggregate.c / binop.c ---------------------------------------------- */

int pq_eval_call(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out);
int pq_eval_aggregate(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out);
int pq_eval_binary(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out);

/* The range-vector argument of a function, walked series by series (eval.c):
 * a matrix selector read once over every step's window, or a subquery
 * evaluated at its own steps.  cb gets each series' samples (stale markers
 * removed, ascending) with its labels (tenant removed, in the arena). */
typedef struct pq_window {
    int64_t range, offset;
    int fixed; /* @: every step ends at `at` - offset */
    int64_t at;
} pq_window_t;
static inline int64_t pq_win_end(const pq_window_t *w, int64_t t)
{
    return (w->fixed ? w->at : t) - w->offset;
}

/* The first index at or past i whose sample is later than t (s ascending).
 * Galloping, not a step at a time: windows narrower than the step (a [5m]
 * rate every 30 min over 7 days) skip most samples, and walking each of them
 * was a large part of such a query; consecutive windows cost ~2 compares. */
static inline size_t pq_after(const tsdb_sample_t *s, size_t i, size_t n, int64_t t)
{
    if (i >= n || s[i].t > t) return i;
    size_t lo = i, hi = i + 1, step = 1; /* s[lo].t <= t */
    while (hi < n && s[hi].t <= t) {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    if (hi > n) hi = n;
    while (hi - lo > 1) { /* s[lo].t <= t < s[hi].t (or hi == n) */
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].t <= t)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

typedef int (*pq_series_cb)(pq_ev_t *ev, void *ud, const tsdb_label_t *l, size_t nl, const tsdb_sample_t *s,
                            size_t n);
int pq_range_walk(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_window_t *w, pq_series_cb cb,
                  void *ud);
/* The same over rollup points at resolution res (api_read_set_rollups), for
 * windows that are whole rollup intervals; cb may read the current series'
 * raw samples instead with pq_set_samples (its fallback). */
typedef int (*pq_rollup_cb)(pq_ev_t *ev, void *ud, api_read_set_t *set, const tsdb_label_t *l, size_t nl,
                            const tsdb_rollup_point_t *p, size_t n);
int pq_rollup_walk(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_window_t *w, int64_t res,
                   pq_rollup_cb cb, void *ud);
/* The current series' samples, stale markers removed, in the arena. */
int pq_set_samples(pq_ev_t *ev, api_read_set_t *set, const tsdb_sample_t **out, size_t *n);
/* The time of an @ modifier (t without one). */
int64_t pq_at_time(const pq_ev_t *ev, promql_at_t at, int64_t at_ms, int64_t t);
/* An instant vector selector; ts_value: each point's value is its sample's
 * timestamp in seconds (timestamp()). */
int pq_eval_vsel(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, int ts_value, pq_mat_t *out);
/* A scalar argument's values per step (NaN where not a scalar). */
int pq_eval_scalar(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, double **out);

/* Kahan-Neumaier compensated sum step, as Prometheus' kahanSumInc. */
static inline void pq_kahan(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (t == t && t - t != 0) /* +-Inf */
        *c = 0;
    else if ((*sum < 0 ? -*sum : *sum) >= (inc < 0 ? -inc : inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

#endif
