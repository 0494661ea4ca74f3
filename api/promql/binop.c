/*
 * binop.c: binary operators of the evaluator: scalar-scalar, vector-scalar,
 * vector-vector with on/ignoring and group_left/group_right, bool, the set
 * operators and, or, unless, with Prometheus' label rules and its matching
 * errors word for word.  Match signatures are computed once per series and
 * interned; each step then matches through arrays indexed by signature.
 */
#include "eval_internal.h"

#include <math.h>
#include <string.h>

static int is_cmp(promql_binop_t op) { return op >= PROMQL_OP_EQL && op <= PROMQL_OP_LTE; }
static int is_set(promql_binop_t op) { return op >= PROMQL_OP_AND; }

/* Prometheus' vectorElemBinop: the value and whether a comparison keeps it. */
static double elem_op(promql_binop_t op, double l, double r, int *keep)
{
    *keep = 1;
    switch (op) {
    case PROMQL_OP_ADD: return l + r;
    case PROMQL_OP_SUB: return l - r;
    case PROMQL_OP_MUL: return l * r;
    case PROMQL_OP_DIV: return l / r;
    case PROMQL_OP_MOD: return fmod(l, r);
    case PROMQL_OP_POW: return pow(l, r);
    case PROMQL_OP_ATAN2: return atan2(l, r);
    case PROMQL_OP_EQL: *keep = l == r; return l;
    case PROMQL_OP_NEQ: *keep = l != r; return l;
    case PROMQL_OP_GTR: *keep = l > r; return l;
    case PROMQL_OP_LSS: *keep = l < r; return l;
    case PROMQL_OP_GTE: *keep = l >= r; return l;
    case PROMQL_OP_LTE: *keep = l <= r; return l;
    default: *keep = 0; return NAN;
    }
}

static int scalar_scalar(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, double *l, double *r,
                         pq_val_t *out)
{
    out->type = PROMQL_TYPE_SCALAR;
    out->scalar = l;
    (void)ev;
    for (size_t i = 0; i < st->n; i++) {
        int keep;
        double v = elem_op(n->u.binary.op, l[i], r[i], &keep);
        out->scalar[i] = is_cmp(n->u.binary.op) ? (keep ? 1 : 0) : v;
    }
    return 0;
}

static int vector_scalar(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, const pq_mat_t *vec,
                         const double *sc, int swap, pq_val_t *out)
{
    const promql_binop_t op = n->u.binary.op;
    const int rbool = n->u.binary.return_bool, drop = !is_cmp(op) || rbool;
    int rc;
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < vec->n; i++) {
        const pq_series_t *s = &vec->s[i];
        const tsdb_label_t *l = s->labels;
        size_t nl = s->nl, idx = 0;
        int added = 0;
        if (drop && !(l = pq_labels_copy(ev, s->labels, s->nl, "__name__", &nl))) return pq_nomem(ev);
        for (size_t j = 0; j < s->n; j++) {
            double lv = s->pts[j].v, rv = sc[pq_step_idx(st, s->pts[j].t)];
            int keep;
            double v = swap ? elem_op(op, rv, lv, &keep) : elem_op(op, lv, rv, &keep);
            if (is_cmp(op) && swap) v = lv; /* the vector's value, whatever its side */
            if (rbool) {
                v = keep ? 1 : 0;
                keep = 1;
            }
            if (!keep) continue;
            if (!added) {
                if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
                added = 1;
            }
            if ((rc = pq_push(ev, &out->m.s[idx], s->pts[j].t, v)) != 0) return rc;
        }
    }
    return pq_mat_finish(ev, &out->m);
}

/* Interned match signatures of a side's series. */
static int signatures(pq_ev_t *ev, const pq_mat_t *m, const promql_node_t *n, pq_mat_t *sigs, size_t **out)
{
    size_t *s = strata_arena_alloc(ev->a, (m->n + 1) * sizeof *s);
    if (!s) return pq_nomem(ev);
    for (size_t i = 0; i < m->n; i++) {
        size_t nl;
        tsdb_label_t *l = pq_labels_filter(ev, m->s[i].labels, m->s[i].nl, &n->u.binary.matching,
                                           n->u.binary.on, &nl);
        if (!l) return pq_nomem(ev);
        int rc = pq_mat_find_or_add(ev, sigs, l, nl, &s[i]);
        if (rc) return rc;
    }
    *out = s;
    return 0;
}

static int set_op(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, const pq_mat_t *L,
                  const pq_mat_t *R, pq_val_t *out)
{
    const promql_binop_t op = n->u.binary.op;
    pq_mat_t sigs = { 0 };
    size_t *ls, *rs;
    int rc = signatures(ev, L, n, &sigs, &ls);
    if (!rc) rc = signatures(ev, R, n, &sigs, &rs);
    if (rc) return rc;
    size_t *mark = strata_arena_calloc(ev->a, sigs.n + 1, sizeof *mark);
    size_t *lcur = strata_arena_calloc(ev->a, L->n + 1, sizeof *lcur),
           *rcur = strata_arena_calloc(ev->a, R->n + 1, sizeof *rcur);
    uint32_t *li = strata_arena_alloc(ev->a, (L->n + 1) * sizeof *li),
             *ri = strata_arena_alloc(ev->a, (R->n + 1) * sizeof *ri);
    double *lv = strata_arena_alloc(ev->a, (L->n + 1) * sizeof *lv),
           *rv = strata_arena_alloc(ev->a, (R->n + 1) * sizeof *rv);
    size_t *lout = strata_arena_alloc(ev->a, (L->n + 1) * sizeof *lout),
           *rout = strata_arena_alloc(ev->a, (R->n + 1) * sizeof *rout);
    if (!mark || !lcur || !rcur || !li || !ri || !lv || !rv || !lout || !rout) return pq_nomem(ev);
    for (size_t i = 0; i < L->n; i++) lout[i] = SIZE_MAX;
    for (size_t i = 0; i < R->n; i++) rout[i] = SIZE_MAX;
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < st->n; i++) {
        int64_t t = pq_step_t(st, i);
        size_t nl = pq_at_step(L, lcur, t, li, lv), nr = pq_at_step(R, rcur, t, ri, rv);
        if ((rc = pq_check(ev)) != 0) return rc;
        /* the side whose signatures decide: rhs for and/unless, lhs for or */
        if (op == PROMQL_OP_OR) {
            for (size_t q = 0; q < nl; q++) mark[ls[li[q]]] = i + 1;
        } else {
            for (size_t q = 0; q < nr; q++) mark[rs[ri[q]]] = i + 1;
        }
        for (size_t q = 0; q < nl; q++) {
            size_t s = li[q];
            int in = mark[ls[s]] == i + 1;
            if (op == PROMQL_OP_AND && !in) continue;
            if (op == PROMQL_OP_UNLESS && in) continue;
            if (lout[s] == SIZE_MAX &&
                (rc = pq_mat_find_or_add(ev, &out->m, L->s[s].labels, L->s[s].nl, &lout[s])) != 0)
                return rc;
            if ((rc = pq_push(ev, &out->m.s[lout[s]], t, lv[q])) != 0) return rc;
        }
        if (op != PROMQL_OP_OR) continue;
        for (size_t q = 0; q < nr; q++) {
            size_t s = ri[q];
            if (mark[rs[s]] == i + 1) continue;
            if (rout[s] == SIZE_MAX &&
                (rc = pq_mat_find_or_add(ev, &out->m, R->s[s].labels, R->s[s].nl, &rout[s])) != 0)
                return rc;
            if ((rc = pq_push(ev, &out->m.s[rout[s]], t, rv[q])) != 0) return rc;
        }
    }
    return pq_mat_finish(ev, &out->m);
}

/* Prometheus' resultMetric: the labels of a match of many-side series m with
 * one-side series o. */
static tsdb_label_t *result_labels(pq_ev_t *ev, const promql_node_t *n, const pq_series_t *m,
                                   const pq_series_t *o, size_t *nout)
{
    const promql_binop_t op = n->u.binary.op;
    const tsdb_label_t *l = m->labels;
    size_t nl = m->nl;
    tsdb_label_t *r = NULL;
    if ((!is_cmp(op) || n->u.binary.return_bool) && !(l = r = pq_labels_copy(ev, l, nl, "__name__", &nl)))
        return NULL;
    if (n->u.binary.card == PROMQL_CARD_ONE_TO_ONE) {
        if (n->u.binary.on) {
            if (!(l = r = pq_labels_filter(ev, l, nl, &n->u.binary.matching, 1, &nl))) return NULL;
        } else {
            for (size_t i = 0; i < n->u.binary.matching.n; i++)
                if (!(l = r = pq_labels_set(ev, l, nl, n->u.binary.matching.names[i], "", &nl))) return NULL;
        }
    }
    for (size_t i = 0; i < n->u.binary.include.n; i++) {
        const char *name = n->u.binary.include.names[i], *v = pq_label_get(o->labels, o->nl, name);
        if (!(l = r = pq_labels_set(ev, l, nl, name, v ? v : "", &nl))) return NULL;
    }
    if (!r && !(r = pq_labels_copy(ev, l, nl, NULL, &nl))) return NULL;
    *nout = nl;
    return r;
}

static int vector_vector(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, const pq_mat_t *L,
                         const pq_mat_t *R, pq_val_t *out)
{
    const promql_binop_t op = n->u.binary.op;
    const promql_card_t card = n->u.binary.card;
    const int swap = card == PROMQL_CARD_ONE_TO_MANY, rbool = n->u.binary.return_bool;
    const pq_mat_t *M = swap ? R : L, *O = swap ? L : R; /* the "many" and the "one" side */
    pq_mat_t sigs = { 0 };
    size_t *ms, *os;
    int rc = signatures(ev, M, n, &sigs, &ms);
    if (!rc) rc = signatures(ev, O, n, &sigs, &os);
    if (rc) return rc;
    size_t ns = sigs.n;
    size_t *omark = strata_arena_calloc(ev->a, ns + 1, sizeof *omark),
           *oat = strata_arena_alloc(ev->a, (ns + 1) * sizeof *oat);
    size_t *matched = strata_arena_calloc(ev->a, ns + 1, sizeof *matched);
    double *oval = strata_arena_alloc(ev->a, (ns + 1) * sizeof *oval);
    size_t *mcur = strata_arena_calloc(ev->a, M->n + 1, sizeof *mcur),
           *ocur = strata_arena_calloc(ev->a, O->n + 1, sizeof *ocur);
    uint32_t *mi = strata_arena_alloc(ev->a, (M->n + 1) * sizeof *mi),
             *oi = strata_arena_alloc(ev->a, (O->n + 1) * sizeof *oi);
    double *mv = strata_arena_alloc(ev->a, (M->n + 1) * sizeof *mv),
           *ov = strata_arena_alloc(ev->a, (O->n + 1) * sizeof *ov);
    size_t *cache_o = strata_arena_alloc(ev->a, (M->n + 1) * sizeof *cache_o);
    size_t *cache_out = strata_arena_alloc(ev->a, (M->n + 1) * sizeof *cache_out);
    if (!omark || !oat || !matched || !oval || !mcur || !ocur || !mi || !oi || !mv || !ov || !cache_o ||
        !cache_out)
        return pq_nomem(ev);
    for (size_t i = 0; i < M->n; i++) cache_o[i] = SIZE_MAX;
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < st->n; i++) {
        int64_t t = pq_step_t(st, i);
        size_t no = pq_at_step(O, ocur, t, oi, ov), nm = pq_at_step(M, mcur, t, mi, mv);
        if ((rc = pq_check(ev)) != 0) return rc;
        if (!no || !nm) continue;
        for (size_t q = 0; q < no; q++) {
            size_t s = oi[q], g = os[s];
            if (omark[g] == i + 1) {
                const pq_series_t *a = &O->s[s], *b = &O->s[oat[g]];
                char *ml = pq_labels_str(ev, sigs.s[g].labels, sigs.s[g].nl);
                char *as = pq_labels_str(ev, a->labels, a->nl), *bs = pq_labels_str(ev, b->labels, b->nl);
                if (!ml || !as || !bs) return pq_nomem(ev);
                return pq_fail(
                    ev, STRATA_EEXEC,
                    "found duplicate series for the match group %s on the %s hand-side of the operation: "
                    "[%s, %s];many-to-many matching not allowed: matching labels must be unique on one "
                    "side",
                    ml, swap ? "left" : "right", as, bs);
            }
            omark[g] = i + 1;
            oat[g] = s;
            oval[g] = ov[q];
        }
        for (size_t q = 0; q < nm; q++) {
            size_t s = mi[q], g = ms[s];
            if (omark[g] != i + 1) continue;
            double vl = mv[q], vr = oval[g];
            if (swap) vl = oval[g], vr = mv[q];
            int keep;
            double v = elem_op(op, vl, vr, &keep);
            if (rbool) {
                v = keep ? 1 : 0;
            } else if (!keep) {
                continue;
            }
            if (card == PROMQL_CARD_ONE_TO_ONE) {
                if (matched[g] == i + 1)
                    return pq_fail(ev, STRATA_EEXEC,
                                   "multiple matches for labels: many-to-one matching must be explicit "
                                   "(group_left/group_right)");
                matched[g] = i + 1;
            }
            /* the result's labels depend on the one-side series only with group_x */
            size_t o = card == PROMQL_CARD_ONE_TO_ONE ? 0 : oat[g];
            if (cache_o[s] != o) {
                size_t nl;
                tsdb_label_t *l = result_labels(ev, n, &M->s[s], &O->s[oat[g]], &nl);
                if (!l) return pq_nomem(ev);
                if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &cache_out[s])) != 0) return rc;
                cache_o[s] = o;
            }
            pq_series_t *os_ = &out->m.s[cache_out[s]];
            if (os_->n && os_->pts[os_->n - 1].t == t) {
                if (card == PROMQL_CARD_ONE_TO_ONE)
                    return pq_fail(ev, STRATA_EEXEC, "vector cannot contain metrics with the same labelset");
                return pq_fail(ev, STRATA_EEXEC,
                               "multiple matches for matching labels grouping labels must ensure uniqueness");
            }
            if ((rc = pq_push(ev, os_, t, v)) != 0) return rc;
        }
    }
    return pq_mat_finish(ev, &out->m);
}

int pq_eval_binary(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    pq_val_t l, r;
    int rc = pq_eval(ev, n->u.binary.lhs, st, &l);
    if (!rc) rc = pq_eval(ev, n->u.binary.rhs, st, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    const int ls = l.type == PROMQL_TYPE_SCALAR, rs = r.type == PROMQL_TYPE_SCALAR;
    if (ls && rs) return scalar_scalar(ev, n, st, l.scalar, r.scalar, out);
    if (is_set(n->u.binary.op)) {
        if (ls || rs)
            return pq_fail(ev, STRATA_EINVAL, "set operator not allowed in binary scalar expression");
        return set_op(ev, n, st, &l.m, &r.m, out);
    }
    if (rs) return vector_scalar(ev, n, st, &l.m, r.scalar, 0, out);
    if (ls) return vector_scalar(ev, n, st, &r.m, l.scalar, 1, out);
    return vector_vector(ev, n, st, &l.m, &r.m, out);
}
