/* results.c - loading and fitting a study's results (see results.h). */
#include "report/results.h"

#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parameter count of a run under a convention: 0 ours (no embeddings, no head), 1 Kaplan's
 * (no embeddings), 2 Chinchilla's (every parameter). */
static double run_params(const RunRow *x, int convention) {
    return convention == 1 ? (double)x->params_kaplan : convention == 2 ? (double)x->params : (double)x->params_nonembedding;
}

/* A run that learnt no more than a unigram model of the held-out text: the plateau, not a law. */
static int on_plateau(const RunRow *x, double margin) {
    return isfinite(x->unigram_bpb) && x->test_bpb >= x->unigram_bpb * (1 - margin);
}

/* Finished main runs with a test loss, arm by arm in study order, as fit points (with seeds);
 * *plateau counts those left out. */
/* How many times a run saw its unique tokens when its recipe fixed that (data_epochs), else 1. */
static double run_epochs(const RunRow *x) {
    const char *k = x->config ? strstr(x->config, "\"data_epochs\":") : NULL;
    double e = k ? atof(k + strlen("\"data_epochs\":")) : 0;
    return e > 1 ? e : 1;
}

/* A run's cost on a non-FLOP axis (COST_*): seconds of training, every parameter, KV bytes per token
 * at inference, training memory at its batch and context; 0 when unknown (an LSTM has no KV cache). */
static double run_cost(const RunRow *x, int axis) {
    if (axis == COST_FLOPS) return x->flops;
    if (axis == COST_SECONDS) return isfinite(x->elapsed_s) && x->elapsed_s > 0 ? x->elapsed_s : 0;
    Config c;
    Status ignore;
    config_defaults(&c);
    if (!x->config || config_from_json(&c, x->config, &ignore)) return 0;
    size_t total, ne;
    model_count_params(&c, &total, &ne);
    if (axis == COST_PARAMS) return (double)total;
    if (axis == COST_KV_BYTES) return c.family == FAMILY_TRANSFORMER ? transformer_kv_bytes_per_token(&c) : 0;
    return model_memory_estimate(&c, c.batch, c.context).total;
}

static int add_points(PointSet *ps, const ArmRow *arms, int n_arms, const RunRow *runs, int n, double margin,
                      int convention, int axis, int *plateau, Status *st) {
    memset(ps, 0, sizeof *ps);
    for (int a = 0; a < n_arms; a++) /* every arm gets its index, even one with no finished run yet */
        if (points_add_arm(ps, arms[a].name, st) < 0) return -1;
    for (int a = 0; a < n_arms; a++)
        for (int i = 0; i < n; i++) {
            const RunRow *x = &runs[i];
            if (x->arm_id != arms[a].id || x->kind != RUN_MAIN || x->status != RUN_DONE || isnan(x->test_bpb)) continue;
            if (on_plateau(x, margin)) {
                if (plateau) plateau[a]++;
                continue;
            }
            if (points_add_run(ps, a, run_params(x, convention), x->tokens, x->flops, x->test_bpb, x->budget,
                               x->seed, st))
                return -1;
            ps->p[ps->n - 1].epochs = run_epochs(x); /* for the data-constrained law (claim C11) */
            if (axis != COST_FLOPS && points_set_cost(ps, ps->n - 1, run_cost(x, axis), st)) return -1;
        }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double meta_num(Registry *reg, const char *key, double fallback) {
    char buf[64];
    Status ignore;
    return registry_meta(reg, key, buf, sizeof buf, &ignore) == 1 ? atof(buf) : fallback;
}

int results_load(Results *r, const char *dir, Status *st) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    Registry *reg;
    if (registry_open(&reg, dir, REG_OPEN_READ, st)) return -1;
    ArmRow *arms = NULL;
    int n_arms = 0;
    int rc = registry_study_info(reg, &r->info, st);
    if (!rc) rc = registry_arms(reg, &arms, &n_arms, st);
    if (!rc) rc = registry_runs(reg, 0, -1, -1, 1, &r->runs, &r->n_runs, st);
    r->plateau_margin = meta_num(reg, "plateau_margin", 0.02);
    registry_close(reg);
    if (!rc && !(r->arms = calloc((size_t)(n_arms ? n_arms : 1), sizeof *r->arms)))
        rc = status_fail(st, AP_ENOMEM, "out of memory");
    for (int a = 0; !rc && a < n_arms; a++) {
        ResultArm *m = &r->arms[r->n_arms++];
        m->row = arms[a];
        for (int i = 0; i < r->n_runs && !m->has_cfg; i++) {
            if (r->runs[i].arm_id != m->row.id) continue;
            Status ignore;
            config_defaults(&m->cfg);
            m->has_cfg = config_from_json(&m->cfg, r->runs[i].config, &ignore) == 0;
            /* runs recorded before the gemm key existed ran every product on OpenBLAS */
            if (m->has_cfg && r->runs[i].config && !strstr(r->runs[i].config, "\"gemm\"")) m->cfg.gemm = GEMMLIB_OPENBLAS;
        }
    }
    double *se = calloc((size_t)(r->n_runs ? r->n_runs : 1), sizeof *se);
    int n_se = 0;
    for (int i = 0; !rc && i < r->n_runs; i++) {
        const RunRow *x = &r->runs[i];
        if (se && x->kind == RUN_MAIN && x->status == RUN_DONE && isfinite(x->test_bpb_se) && x->test_bpb > 0)
            se[n_se++] = x->test_bpb_se / x->test_bpb;
        r->runs_total++;
        if (x->status != RUN_DONE) continue;
        r->runs_done++;
        r->flops_done += x->flops;
        if (!x->copied_from && !isnan(x->elapsed_s)) r->seconds += x->elapsed_s;
    }
    r->eval_se = NAN;
    if (se && n_se) {
        qsort(se, (size_t)n_se, sizeof *se, cmp_double);
        r->eval_se = se[n_se / 2];
    }
    free(se);
    int *plateau = calloc((size_t)(n_arms ? n_arms : 1), sizeof *plateau);
    if (!rc && !plateau) rc = status_fail(st, AP_ENOMEM, "out of memory");
    if (!rc) rc = add_points(&r->ps, arms, n_arms, r->runs, r->n_runs, r->plateau_margin, 0, COST_FLOPS, plateau, st);
    if (!rc) rc = add_points(&r->ps_kaplan, arms, n_arms, r->runs, r->n_runs, r->plateau_margin, 1, COST_FLOPS, NULL, st);
    if (!rc) rc = add_points(&r->ps_chinchilla, arms, n_arms, r->runs, r->n_runs, r->plateau_margin, 2, COST_FLOPS, NULL, st);
    for (int a = 0; !rc && a < r->n_arms; a++) r->arms[a].n_plateau = plateau[a];
    free(plateau);
    free(arms);
    if (rc) results_free(r);
    return rc;
}

int results_pair(Results *r, int ref, int cand) {
    for (int i = 0; i < r->n_pairs; i++)
        if (r->pairs[i].ref == ref && r->pairs[i].cand == cand) return i;
    if (r->n_pairs == r->cap_pairs) {
        int cap = r->cap_pairs ? 2 * r->cap_pairs : 16;
        ResultPair *p = realloc(r->pairs, (size_t)cap * sizeof *p);
        if (!p) return -1;
        r->pairs = p, r->cap_pairs = cap;
    }
    ResultPair *p = &r->pairs[r->n_pairs];
    memset(p, 0, sizeof *p);
    p->ref = ref, p->cand = cand;
    Status st = {0};
    /* a law that missed its own held-out budget carries no CEG: such a pair is read by local
     * interpolation between frontier points (the laws' fits stay in the tables) */
    const Frontier *f[2] = {&r->arms[ref].fr, &r->arms[cand].fr};
    Frontier local[2];
    const char *missed = NULL;
    for (int k = 0; k < 2; k++) {
        const ResultArm *m = &r->arms[k ? cand : ref];
        if (m->holdout.k > 0 && m->holdout.n_inside < m->holdout.k && f[k]->law.identified) {
            local[k] = *f[k]; /* shallow: ceg_pair only reads it */
            local[k].law.identified = 0;
            f[k] = &local[k];
            missed = m->row.name;
        }
    }
    p->ok = ceg_pair(f[0], f[1], CEG_REPORT_LEVELS, &r->fit, &p->c, &st) == 0;
    if (!p->ok) snprintf(p->why, sizeof p->why, "%.250s", st.msg);
    if (p->ok && missed) {
        size_t l = strlen(p->c.notes);
        snprintf(p->c.notes + l, sizeof p->c.notes - l, "; the law of %s missed its held-out largest budget, so no law "
                 "is used", missed);
    }
    return r->n_pairs++;
}

int results_n_budgets(const Results *r) {
    int n = 0;
    for (int i = 0; i < r->n_runs; i++)
        if (r->runs[i].kind == RUN_MAIN && r->runs[i].budget_index >= n) n = r->runs[i].budget_index + 1;
    return n;
}

int results_arm_cost(const Results *r, int arm, int budget_index, ArmCost *out) {
    out->run = -1;
    out->flops = out->loss = out->params = out->active = out->kv_bytes = out->memory = NAN;
    double best = INFINITY;
    for (int i = 0; i < r->n_runs; i++) { /* each size (point) once: the mean over its seeds */
        const RunRow *x = &r->runs[i];
        if (x->arm_id != r->arms[arm].row.id || x->kind != RUN_MAIN || x->status != RUN_DONE ||
            x->budget_index != budget_index || isnan(x->test_bpb))
            continue;
        double sum = 0, fl = 0;
        int n = 0, first = 1;
        for (int j = 0; j < r->n_runs && first; j++) {
            const RunRow *y = &r->runs[j];
            if (y->arm_id != x->arm_id || y->kind != RUN_MAIN || y->status != RUN_DONE ||
                y->budget_index != budget_index || y->point != x->point || isnan(y->test_bpb))
                continue;
            if (j < i) first = 0; /* this size was measured at an earlier run */
            sum += y->test_bpb, fl += y->flops, n++;
        }
        if (first && sum / n < best) best = sum / n, out->run = i, out->loss = best, out->flops = fl / n;
    }
    if (out->run < 0) return -1;
    Config c;
    Status ignore;
    config_defaults(&c);
    if (config_from_json(&c, r->runs[out->run].config, &ignore)) return 0; /* the loss without the costs */
    size_t total, ne;
    model_count_params(&c, &total, &ne);
    out->params = (double)total;
    out->active = (double)model_active_params(&c);
    if (c.family == FAMILY_TRANSFORMER) out->kv_bytes = transformer_kv_bytes_per_token(&c);
    out->memory = model_memory_estimate(&c, c.batch, c.context).total;
    return 0;
}

/* N*(C)'s exponent with N counted another way: the same profiles, another x axis (no resamples). */
static void exponent_under(const PointSet *ps, int n_arms, const FitOptions *o, ResultArm *arms, int convention) {
    Frontier *fr = calloc((size_t)(n_arms ? n_arms : 1), sizeof *fr);
    FitOptions q = *o;
    q.n_boot = 0;
    Status st;
    if (fr && frontier_fit_arms(ps->p, ps->n, n_arms, &q, fr, &st) == 0)
        for (int a = 0; a < n_arms; a++) {
            if (convention == 1) arms[a].a_kaplan = fr[a].a_exp;
            else arms[a].a_chinchilla = fr[a].a_exp;
            frontier_free(&fr[a]);
        }
    free(fr);
}

/* The CEG of every arm over the first on one cost axis, at the middle level (results.h). Points the
 * axis cannot price (an LSTM's KV cache) are left out; their arm then says so. */
static void cost_axis_cegs(Results *r, int axis, const FitOptions *o) {
    ArmRow *rows = calloc((size_t)(r->n_arms ? r->n_arms : 1), sizeof *rows);
    Frontier *fr = calloc((size_t)(r->n_arms ? r->n_arms : 1), sizeof *fr);
    PointSet ps = {0};
    Status st = {0};
    const char *fail = NULL;
    for (int a = 0; rows && a < r->n_arms; a++) rows[a] = r->arms[a].row;
    if (!rows || !fr || add_points(&ps, rows, r->n_arms, r->runs, r->n_runs, r->plateau_margin, 0, axis, NULL, &st))
        fail = "out of memory";
    if (!fail) { /* keep the points the axis can price */
        int k = 0;
        for (int i = 0; i < ps.n; i++)
            if (ps.cost[i] > 0) ps.cost[k] = ps.cost[i], ps.p[k++] = ps.p[i];
        ps.n = k;
        if (points_cost_axis(&ps, axis, &st) || frontier_fit_arms(ps.p, ps.n, r->n_arms, o, fr, &st)) fail = st.msg;
    }
    for (int a = 1; a < r->n_arms; a++) {
        ResultArm *m = &r->arms[a];
        CegCurve c;
        Status cs = {0};
        if (fail) snprintf(m->axis[axis].why, sizeof m->axis[axis].why, "%.90s", fail);
        else if (!fr[a].n || !fr[0].n)
            snprintf(m->axis[axis].why, sizeof m->axis[axis].why, "no runs priced on this axis");
        else if (ceg_pair(&fr[0], &fr[a], CEG_REPORT_LEVELS, o, &c, &cs))
            snprintf(m->axis[axis].why, sizeof m->axis[axis].why, "%.90s", cs.msg);
        else {
            const CegLevel *v = &c.lv[c.n / 2];
            m->axis[axis].loss = v->loss, m->axis[axis].ceg = v->ceg, m->axis[axis].lo = v->lo;
            m->axis[axis].hi = v->hi, m->axis[axis].ok = 1;
        }
    }
    for (int a = 0; fr && a < r->n_arms; a++) frontier_free(&fr[a]); /* zeroed ones too */
    free(rows), free(fr);
    points_free(&ps);
}

/* Approaches 2 and 3 on one arm's runs, side by side with its frontier (results.h). */
static void allocation_approaches(Results *r, int a, const FitOptions *o) {
    ResultArm *m = &r->arms[a];
    FitPoint *pts;
    int n = points_of_arm(&r->ps, a, &pts);
    FitOptions q = *o;
    q.n_boot = o->n_boot < 200 ? o->n_boot : 200; /* a side table: 200 resamples give its intervals */
    Approach2Fit f2;
    LawFit f3;
    Status st = {0};
    m->a2_bias = NAN;
    if (n < 0) return;
    if (fit_chinchilla_approach2(pts, n, &q, &f2, &st)) {
        snprintf(m->a23_why, sizeof m->a23_why, "%.90s", st.msg);
    } else {
        if (!isfinite(f2.a.value))
            snprintf(m->a23_why, sizeof m->a23_why, "fewer than 2 budgets with an interior IsoFLOP minimum");
        else if (fit_chinchilla_approach3(pts, n, &q, &f3, &st))
            snprintf(m->a23_why, sizeof m->a23_why, "approach 3: %.78s", st.msg);
        else {
            if (approach2_design_bias(pts, n, &f3, &f2, &st) == 0) {
                m->has_a23 = 1, m->a2 = f2.a, m->a3 = f3.a_exp, m->a2_bias = f2.bias;
                m->a2_flagged = approach2_bias_flagged(&f2);
            }
            law_fit_free(&f3);
        }
        approach2_free(&f2);
    }
    free(pts);
}

int results_fit(Results *r, const FitOptions *o, int verbose, Status *st) {
    r->fit = *o;
    Frontier *fr = calloc((size_t)(r->n_arms ? r->n_arms : 1), sizeof *fr);
    if (!fr) return status_fail(st, AP_ENOMEM, "out of memory");
    /* one call: the arms share the pooled noise, budgets are matched across arms */
    if (frontier_fit_arms(r->ps.p, r->ps.n, r->n_arms, o, fr, st)) {
        free(fr);
        return -1;
    }
    /* validated extrapolation: every arm's law without its largest budget predicts it */
    Holdout *ho = calloc((size_t)(r->n_arms ? r->n_arms : 1), sizeof *ho);
    Status hs = {0};
    if (ho && frontier_holdout(r->ps.p, r->ps.n, r->n_arms, 1, fr, o, ho, &hs))
        for (int a = 0; a < r->n_arms; a++) snprintf(ho[a].why, sizeof ho[a].why, "%.150s", hs.msg);
    for (int a = 0; a < r->n_arms; a++) {
        ResultArm *arm = &r->arms[a];
        arm->fr = fr[a];
        if (ho) arm->holdout = ho[a];
        arm->n_points = 0;
        for (int i = 0; i < r->ps.n; i++) arm->n_points += r->ps.p[i].arm == a;
        if (verbose)
            fprintf(stderr, "report: arm %s: %d runs, %d frontier points%s\n", arm->row.name, arm->n_points, arm->fr.n,
                    arm->fr.has_law ? "" : ", no law");
    }
    free(fr), free(ho);
    exponent_under(&r->ps_kaplan, r->n_arms, o, r->arms, 1);
    exponent_under(&r->ps_chinchilla, r->n_arms, o, r->arms, 2);
    for (int a = 1; a < r->n_arms; a++) results_pair(r, 0, a);
    for (int a = 1; a < r->n_arms; a++) { /* the FLOPs axis is the report's own CEG */
        int k = results_pair(r, 0, a);
        ResultArm *m = &r->arms[a];
        if (k >= 0 && r->pairs[k].ok) {
            const CegLevel *v = &r->pairs[k].c.lv[r->pairs[k].c.n / 2];
            m->axis[COST_FLOPS].loss = v->loss, m->axis[COST_FLOPS].ceg = v->ceg, m->axis[COST_FLOPS].lo = v->lo;
            m->axis[COST_FLOPS].hi = v->hi, m->axis[COST_FLOPS].ok = 1;
        } else if (k >= 0) snprintf(m->axis[COST_FLOPS].why, sizeof m->axis[COST_FLOPS].why, "%.90s", r->pairs[k].why);
    }
    for (int axis = COST_SECONDS; axis < COST_AXES && r->n_arms > 1; axis++) cost_axis_cegs(r, axis, o);
    for (int a = 0; a < r->n_arms; a++) allocation_approaches(r, a, o);
    return 0;
}

int results_arm_named(const Results *r, const char *name) {
    for (int i = 0; i < r->n_arms; i++)
        if (!strcmp(r->arms[i].row.name, name)) return i;
    return -1;
}

/* The arms of the package whose base arm is `base` (named NAME.base); 0 when incomplete. */
static int find_package(Results *r, int base, ResultAblation *ab) {
    const char *nm = r->arms[base].row.name, *dot = strstr(nm, ".base");
    if (!dot || dot[5]) return 0;
    memset(ab, 0, sizeof *ab);
    snprintf(ab->name, sizeof ab->name, "%.*s", (int)(dot - nm), nm);
    char full[128];
    snprintf(full, sizeof full, "%s.full", ab->name);
    ab->base = base, ab->full = results_arm_named(r, full);
    if (ab->full < 0) return 0;
    size_t len = strlen(ab->name);
    for (int j = 0; j < r->n_arms && ab->n < ABLATION_MAX; j++) {
        const char *m = r->arms[j].row.name;
        if (strncmp(m, ab->name, len) || m[len] != '+') continue;
        char minus[128];
        snprintf(minus, sizeof minus, "%s-%s", ab->name, m + len + 1);
        int mi = results_arm_named(r, minus);
        if (mi < 0) continue;
        snprintf(ab->sw[ab->n], sizeof ab->sw[0], "%s", m + len + 1);
        ab->plus[ab->n] = j, ab->minus[ab->n++] = mi;
    }
    if (ab->n < 2) return 0;
    int unfit = !r->arms[ab->base].fr.has_law ? ab->base : !r->arms[ab->full].fr.has_law ? ab->full : -1;
    for (int k = 0; k < ab->n && unfit < 0; k++)
        unfit = !r->arms[ab->plus[k]].fr.has_law ? ab->plus[k] : !r->arms[ab->minus[k]].fr.has_law ? ab->minus[k] : -1;
    if (unfit >= 0) /* a package the study planned, which the data cannot measure yet */
        snprintf(r->ablation_note, sizeof r->ablation_note, "ablation %.47s: arm %.47s has no fitted frontier yet",
                 ab->name, r->arms[unfit].row.name);
    return unfit < 0;
}

/* Shapley shares when every subset of the package's switches is an arm with a fitted frontier: a
 * factorial design, or any package of 3 or fewer switches (its one-at-a-time and leave-one-out
 * arms are all the subsets). A subset of one switch is NAME+S, of all but one NAME-S, else
 * NAME+S1+S2... in the package's order. */
static void package_shapley(Results *r, ResultAblation *ab) {
    if (ab->n > 5) return;
    const LawFit *by_mask[32];
    int all = (1 << ab->n) - 1;
    for (int m = 0; m <= all; m++) {
        int bits = __builtin_popcount((unsigned)m), arm = -1;
        if (m == 0) arm = ab->base;
        else if (m == all) arm = ab->full;
        else if (bits == 1) arm = ab->plus[__builtin_ctz((unsigned)m)];
        else if (bits == ab->n - 1) arm = ab->minus[__builtin_ctz((unsigned)(all & ~m))];
        else {
            char name[160];
            size_t len = (size_t)snprintf(name, sizeof name, "%s", ab->name);
            for (int k = 0; k < ab->n; k++)
                if (m & (1 << k)) len += (size_t)snprintf(name + len, sizeof name - len, "+%s", ab->sw[k]);
            if (len < sizeof name) arm = results_arm_named(r, name);
        }
        if (arm < 0 || !r->arms[arm].fr.has_law) return;
        by_mask[m] = &r->arms[arm].fr.law;
    }
    ablation_shapley(by_mask, ab->n, &ab->s);
}

void results_ablations(Results *r) {
    r->n_ablations = 0;
    r->ablation_note[0] = '\0';
    for (int i = 0; i < r->n_arms && r->n_ablations < RESULTS_MAX_ABLATIONS; i++) {
        ResultAblation *ab = &r->abl[r->n_ablations];
        if (!find_package(r, i, ab)) continue;
        const LawFit *plus[ABLATION_MAX], *minus[ABLATION_MAX];
        for (int k = 0; k < ab->n; k++) plus[k] = &r->arms[ab->plus[k]].fr.law, minus[k] = &r->arms[ab->minus[k]].fr.law;
        if (ablation_analyse(&r->arms[ab->base].fr.law, &r->arms[ab->full].fr.law, plus, minus, ab->n, &ab->s) == 0) {
            package_shapley(r, ab);
            r->n_ablations++;
        }
    }
}

void results_free(Results *r) {
    for (int a = 0; a < r->n_arms; a++) frontier_free(&r->arms[a].fr);
    free(r->arms);
    points_free(&r->ps_kaplan);
    points_free(&r->ps_chinchilla);
    registry_runs_free(r->runs, r->n_runs);
    points_free(&r->ps);
    free(r->pairs);
    study_info_free(&r->info);
    memset(r, 0, sizeof *r);
}

int results_points(const char *dir, int axis, PointSet *ps, Status *st) {
    Registry *reg;
    if (registry_open(&reg, dir, REG_OPEN_READ, st)) return -1;
    ArmRow *arms = NULL;
    RunRow *runs = NULL;
    int n_arms = 0, n = 0;
    int rc = registry_arms(reg, &arms, &n_arms, st);
    if (!rc) rc = registry_runs(reg, 0, RUN_MAIN, RUN_DONE, 1, &runs, &n, st);
    double margin = meta_num(reg, "plateau_margin", 0.02);
    registry_close(reg);
    if (!rc) rc = add_points(ps, arms, n_arms, runs, n, margin, 0, axis, NULL, st);
    if (rc) points_free(ps);
    free(arms);
    registry_runs_free(runs, n);
    return rc;
}
