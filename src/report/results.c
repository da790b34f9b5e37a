/* results.c - loading and fitting a study's results (see results.h). */
#include "report/results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finished main runs with a loss, arm by arm in study order, as fit points. */
static int add_points(PointSet *ps, const ArmRow *arms, int n_arms, const RunRow *runs, int n, Status *st) {
    memset(ps, 0, sizeof *ps);
    for (int a = 0; a < n_arms; a++) /* every arm gets its index, even one with no finished run yet */
        if (points_add_arm(ps, arms[a].name, st) < 0) return -1;
    for (int a = 0; a < n_arms; a++)
        for (int i = 0; i < n; i++) {
            const RunRow *x = &runs[i];
            if (x->arm_id != arms[a].id || x->kind != RUN_MAIN || x->status != RUN_DONE || isnan(x->val_bpb)) continue;
            if (points_add(ps, a, (double)x->params_nonembedding, x->tokens, x->flops, x->val_bpb, x->budget, st))
                return -1;
        }
    return 0;
}

int results_load(Results *r, const char *dir, Status *st) {
    memset(r, 0, sizeof *r);
    Registry *reg;
    if (registry_open(&reg, dir, REG_OPEN_READ, st)) return -1;
    ArmRow *arms = NULL;
    int n_arms = 0;
    int rc = registry_study_info(reg, &r->info, st);
    if (!rc) rc = registry_arms(reg, &arms, &n_arms, st);
    if (!rc) rc = registry_runs(reg, 0, -1, -1, 1, &r->runs, &r->n_runs, st);
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
        }
    }
    for (int i = 0; !rc && i < r->n_runs; i++) {
        const RunRow *x = &r->runs[i];
        r->runs_total++;
        if (x->status != RUN_DONE) continue;
        r->runs_done++;
        r->flops_done += x->flops;
        if (!x->copied_from && !isnan(x->elapsed_s)) r->seconds += x->elapsed_s;
    }
    if (!rc) rc = add_points(&r->ps, arms, n_arms, r->runs, r->n_runs, st);
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
    p->ok = r->arms[ref].has_fit && r->arms[cand].has_fit &&
            ceg_compute(&r->arms[ref].fit, &r->arms[cand].fit, 6, 0.95, &p->c) == 0;
    return r->n_pairs++;
}

void results_fit(Results *r, const FitOptions *o, int verbose) {
    for (int a = 0; a < r->n_arms; a++) {
        FitPoint *pts;
        int n = points_of_arm(&r->ps, a, &pts);
        ResultArm *arm = &r->arms[a];
        arm->n_points = n < 0 ? 0 : n;
        Status st;
        if (n >= 2 && fit_frontier(pts, n, o, &arm->fit, &st) == 0) arm->has_fit = 1;
        if (!strcmp(arm->row.allocation, "isoflop") && n >= 3 &&
            fit_chinchilla_approach2(pts, n, o, &arm->iso, &st) == 0)
            arm->has_iso = 1;
        free(pts);
        if (verbose) fprintf(stderr, "report: fitted arm %s (%d points)\n", arm->row.name, arm->n_points);
    }
    for (int a = 1; a < r->n_arms; a++) results_pair(r, 0, a);
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
    int ok = ab->n >= 2 && r->arms[ab->base].has_fit && r->arms[ab->full].has_fit;
    for (int k = 0; k < ab->n; k++) ok = ok && r->arms[ab->plus[k]].has_fit && r->arms[ab->minus[k]].has_fit;
    return ok;
}

void results_ablations(Results *r) {
    r->n_ablations = 0;
    for (int i = 0; i < r->n_arms && r->n_ablations < RESULTS_MAX_ABLATIONS; i++) {
        ResultAblation *ab = &r->abl[r->n_ablations];
        if (!find_package(r, i, ab)) continue;
        const LawFit *plus[ABLATION_MAX], *minus[ABLATION_MAX];
        for (int k = 0; k < ab->n; k++) plus[k] = &r->arms[ab->plus[k]].fit, minus[k] = &r->arms[ab->minus[k]].fit;
        if (ablation_analyse(&r->arms[ab->base].fit, &r->arms[ab->full].fit, plus, minus, ab->n, &ab->s) == 0)
            r->n_ablations++;
    }
}

void results_free(Results *r) {
    for (int a = 0; a < r->n_arms; a++)
        if (r->arms[a].has_fit) law_fit_free(&r->arms[a].fit);
    free(r->arms);
    registry_runs_free(r->runs, r->n_runs);
    points_free(&r->ps);
    free(r->pairs);
    study_info_free(&r->info);
    memset(r, 0, sizeof *r);
}

int results_points(const char *dir, PointSet *ps, Status *st) {
    Registry *reg;
    if (registry_open(&reg, dir, REG_OPEN_READ, st)) return -1;
    ArmRow *arms = NULL;
    RunRow *runs = NULL;
    int n_arms = 0, n = 0;
    int rc = registry_arms(reg, &arms, &n_arms, st);
    if (!rc) rc = registry_runs(reg, 0, RUN_MAIN, RUN_DONE, 0, &runs, &n, st);
    registry_close(reg);
    if (!rc) rc = add_points(ps, arms, n_arms, runs, n, st);
    if (rc) points_free(ps);
    free(arms);
    registry_runs_free(runs, n);
    return rc;
}
