/* cmd_fit.c - `algoprog fit`: scaling laws and compute-equivalent gains from any points. */
#include "cli/cli.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "fit/ceg.h"
#include "fit/frontier.h"
#include "fit/laws.h"
#include "fit/points.h"
#include "report/results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_fit =
    "usage: algoprog fit POINTS.csv|STUDY_DIR [--law frontier|approach2|approach3|muennighoff] [--json] [--boot N]\n"
    "         [--seed S] [--holdout top[=K]] [--cost flops|seconds|params|kv_bytes|memory] [--col NAME=HEADER ...]\n"
    "  POINTS.csv: columns among arm, params, tokens, flops, loss, budget, seed, epochs (a study's runs.csv works "
    "as is)\n"
    "  frontier (default): per arm and budget the IsoFLOP minimum (else the best run), averaged over seeds;\n"
    "    L(C) = E + A C^-alpha through those points, noise from seed replicates, parametric-bootstrap\n"
    "    intervals; CEG of every arm over the first (docs/FITTING.md)\n"
    "  --col NAME=HEADER: read the CSV column HEADER as NAME (e.g. --col \"params=Model Size\")\n"
    "  --holdout top[=K]: also fit each arm's frontier without its K largest budgets (default 1) and say\n"
    "    whether the law predicts them (error, 95% prediction interval): extrapolation validated\n"
    "  --cost AXIS: frontiers and CEGs on another cost than training FLOPs: wall-clock seconds of training,\n"
    "    parameters, KV-cache bytes per token, training memory (a study's runs give every axis; a CSV needs a\n"
    "    seconds, params, kv_bytes or memory column); each arm's frontier is its Pareto front on that axis\n"
    "  approach2: IsoFLOP parabolas per budget, N*(C) and D*(C) exponents, beside approach 3 on the same\n"
    "    points and approach 2's design bias under that law (corrected exponent; flagged when large)\n"
    "  approach3: L(N, D) = E + A/N^alpha + B/D^beta per arm (Huber, L-BFGS, grid of starts)\n"
    "  muennighoff: approach 3 over every point with D replaced by the effective data of repeated tokens,\n"
    "    D' = U + U R* (1 - exp(-R/R*)), U = D/epochs, R = epochs - 1 (Muennighoff et al. 2023; claim C11)\n";

/* NAME, NAME_lo, NAME_hi (0 when unbounded) and NAME_identified as members of the open object. */
static void json_param(JsonWriter *w, const char *name, const FitParam *p) {
    char key[64];
    jw_key(w, name), jw_number(w, "%.10g", p->value);
    snprintf(key, sizeof key, "%s_lo", name);
    jw_key(w, key), jw_number(w, "%.10g", isfinite(p->lo) ? p->lo : 0);
    snprintf(key, sizeof key, "%s_hi", name);
    jw_key(w, key), jw_number(w, "%.10g", isfinite(p->hi) ? p->hi : 0);
    snprintf(key, sizeof key, "%s_identified", name);
    jw_key(w, key), jw_bool(w, p->identified);
}

/* Prints the JSON document built so far, with a newline. */
static void json_print(StrBuf *b) {
    if (b->failed) fputs("algoprog: error: out of memory writing JSON\n", stderr);
    else fprintf(stdout, "%s\n", b->s);
    sb_free(b);
}

static void print_param(const char *name, const FitParam *p) {
    printf("  %-6s %12.5g   [%.5g, %.5g]%s\n", name, p->value, p->lo, p->hi, p->identified ? "" : "   not identified");
}

static const char *ceg_bound(double v, char *buf, size_t n) {
    if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else snprintf(buf, n, "%.3g", v);
    return buf;
}

/* One arm's frontier, law, noise and allocation exponents, as text or as members of the open object. */
static void print_holdout(const Holdout *h, int json, JsonWriter *w);

static void print_frontier(const char *name, int runs, const Frontier *f, int json, JsonWriter *w, const Holdout *h) {
    static const char *names[3] = {"E", "A", "alpha"};
    const LawFit *L = &f->law;
    double rej = f->n_boot ? (double)f->n_rejected / f->n_boot : 0;
    if (json) {
        jw_object_begin(w);
        jw_key(w, "arm"), jw_string(w, name);
        jw_key(w, "points"), jw_int(w, runs);
        jw_key(w, "budgets"), jw_int(w, f->n);
        for (int k = 0; k < 3; k++) json_param(w, names[k], &L->p[k]);
        jw_key(w, "rmse_log"), jw_number(w, "%.6g", L->rmse_log);
        jw_key(w, "identified"), jw_bool(w, L->identified);
        jw_key(w, "fit_notes"), jw_string(w, L->notes);
        jw_key(w, "sigma"), jw_number(w, "%.6g", f->sigma);
        jw_key(w, "sigma_seed"), jw_number(w, "%.6g", f->sigma_seed);
        jw_key(w, "dof_seed"), jw_int(w, f->dof_seed);
        jw_key(w, "chi2_red"), jw_number(w, "%.6g", f->chi2_red);
        jw_key(w, "lack_of_fit"), jw_number(w, "%.6g", f->lof);
        jw_key(w, "rejected"), jw_number(w, "%.6g", rej);
        json_param(w, "a", &f->a_exp);
        json_param(w, "b", &f->b_exp);
        jw_key(w, "vertices"), jw_int(w, f->n_vertices);
        jw_key(w, "noise_notes"), jw_string(w, f->notes);
        jw_key(w, "frontier"), jw_array_begin(w);
        for (int i = 0; i < f->n; i++) {
            const FrontierPoint *q = &f->pt[i];
            jw_object_begin(w);
            jw_key(w, "flops"), jw_number(w, "%.6g", q->flops);
            jw_key(w, "loss"), jw_number(w, "%.6g", q->loss);
            jw_key(w, "seeds"), jw_int(w, q->n_seeds);
            jw_key(w, "sizes"), jw_int(w, q->n_sizes);
            jw_key(w, "interior"), jw_int(w, q->n_interior);
            jw_key(w, "n_opt"), jw_number(w, "%.6g", q->n_opt);
            jw_key(w, "d_opt"), jw_number(w, "%.6g", q->d_opt);
            jw_key(w, "why"), jw_string(w, q->why);
            jw_object_end(w);
        }
        jw_array_end(w);
        if (h) print_holdout(h, json, w);
        jw_object_end(w);
        return;
    }
    printf("\narm %s: %d runs, %d budgets on the frontier, L(C) = E + A C^-alpha, rmse of log loss %.4f\n", name, runs,
           f->n, L->rmse_log);
    for (int i = 0; i < f->n; i++) {
        const FrontierPoint *q = &f->pt[i];
        printf("  C %10.4g: loss %.4f  (%d seed%s, %d size%s", q->flops, q->loss, q->n_seeds, q->n_seeds == 1 ? "" : "s",
               q->n_sizes, q->n_sizes == 1 ? "" : "s");
        if (q->n_interior) printf(", vertex N* %.3g D* %.3g", q->n_opt, q->d_opt);
        printf(")%s%s\n", q->why[0] ? "  -- " : "", q->why);
    }
    for (int k = 0; k < 3; k++) print_param(names[k], &L->p[k]);
    char spread[64] = "no seed replicates here";
    if (f->dof_seed) snprintf(spread, sizeof spread, "seed-to-seed here %.3g with %d dof", f->sigma_seed, f->dof_seed);
    printf("  noise of one seed's frontier ln loss %.3g (%s; lack of fit x%.2f); %.1f%% of resamples rejected\n", f->sigma,
           spread, f->lof, 100 * rej);
    if (f->n_vertices) {
        print_param("a", &f->a_exp);
        print_param("b", &f->b_exp);
        printf("  (N* ~ C^a, D* ~ C^b through %d interior vertices)\n", f->n_vertices);
    }
    if (L->notes[0]) printf("  fit: %s\n", L->notes);
    if (f->notes[0]) printf("  note: %s\n", f->notes);
    if (h) print_holdout(h, json, w);
}

static void print_ceg(const char *ref, const char *cand, const CegCurve *c, int json, JsonWriter *w) {
    if (json) {
        jw_object_begin(w);
        jw_key(w, "arm"), jw_string(w, cand);
        jw_key(w, "reference"), jw_string(w, ref);
        jw_key(w, "levels"), jw_array_begin(w);
        for (int k = 0; k < c->n; k++) {
            const CegLevel *v = &c->lv[k];
            jw_object_begin(w);
            jw_key(w, "loss"), jw_number(w, "%.6g", v->loss);
            jw_key(w, "compute_ref"), jw_number(w, "%.6g", v->c_ref);
            jw_key(w, "ceg"), jw_number(w, "%.6g", v->ceg);
            jw_key(w, "ceg_lo"), jw_number(w, "%.6g", isfinite(v->lo) ? v->lo : -1); /* -1: unbounded */
            jw_key(w, "ceg_hi"), jw_number(w, "%.6g", isfinite(v->hi) ? v->hi : -1);
            jw_key(w, "extrapolated"), jw_bool(w, v->extrapolated);
            jw_key(w, "method"), jw_string(w, ceg_method_name(v->method));
            jw_key(w, "unreachable"), jw_number(w, "%.4g", v->unreachable);
            jw_object_end(w);
        }
        jw_array_end(w);
        jw_key(w, "slope"), jw_number(w, "%.6g", c->slope);
        jw_key(w, "slope_lo"), jw_number(w, "%.6g", c->slope_lo);
        jw_key(w, "slope_hi"), jw_number(w, "%.6g", c->slope_hi);
        jw_key(w, "trend"), jw_string(w, c->trend);
        jw_key(w, "determined"), jw_bool(w, c->determined);
        jw_key(w, "rho"), jw_number(w, "%.4g", c->rho);
        jw_key(w, "rho_used"), jw_number(w, "%.4g", c->rho_used);
        jw_key(w, "rejected"), jw_number(w, "%.4g", c->n_boot ? (double)c->n_rejected / c->n_boot : 0);
        jw_key(w, "notes"), jw_string(w, c->notes);
        jw_object_end(w);
        return;
    }
    printf("\nCEG of %s over %s (how many times less compute %s needs for the same loss):\n", cand, ref, cand);
    for (int k = 0; k < c->n; k++) {
        const CegLevel *v = &c->lv[k];
        char lo[32], hi[32];
        printf("  loss %.4f (%s needs %.3g FLOPs): %.3gx [%s, %s] %s%s\n", v->loss, ref, v->c_ref, v->ceg,
               ceg_bound(v->lo, lo, sizeof lo), ceg_bound(v->hi, hi, sizeof hi), ceg_method_name(v->method),
               v->extrapolated ? "  (extrapolated)" : "");
    }
    printf("  scale dependence: d log CEG / d log C = %.3g [%.3g, %.3g]: %s\n", c->slope, c->slope_lo, c->slope_hi,
           c->trend);
    printf("  %s\n", c->notes);
    if (!c->determined)
        printf("  not determined: a frontier above rests on too few budgets, so these numbers only illustrate\n");
}

/* `--law muennighoff`: one data-constrained law over every point (the arms differ in repetition). */
static int fit_repetition(const PointSet *ps, const FitOptions *o, int json, JsonWriter *w, Status *st) {
    LawFit f;
    if (fit_muennighoff(ps->p, ps->n, o, &f, st)) return -1;
    static const char *names[] = {"E", "A", "B", "alpha", "beta", "R*"}, *keys[] = {"E", "A", "B", "alpha", "beta",
                                                                                   "rstar"};
    const double at[] = {4, 16};
    double frac[2][3];
    for (int k = 0; k < 2; k++) muennighoff_fraction(&f, at[k], o->level, frac[k]);
    if (json) {
        for (int k = 0; k < f.n_params; k++) json_param(w, keys[k], &f.p[k]);
        for (int k = 0; k < 2; k++) {
            jw_key(w, k ? "fresh_fraction_16" : "fresh_fraction_4"), jw_array_begin(w);
            for (int j = 0; j < 3; j++) jw_number(w, "%.6g", frac[k][j]);
            jw_array_end(w);
        }
        jw_key(w, "rmse_log"), jw_number(w, "%.6g", f.rmse_log);
        jw_key(w, "identified"), jw_bool(w, f.identified);
        jw_key(w, "fit_notes"), jw_string(w, f.notes);
    } else {
        printf("\ndata-constrained law over %d points: L = E + A/N^alpha + B/D'^beta, D' = U + U R* (1 - e^(-R/R*)); "
               "rmse of log loss %.4f\n", f.n_points, f.rmse_log);
        for (int k = 0; k < f.n_params; k++) print_param(names[k], &f.p[k]);
        for (int k = 0; k < 2; k++)
            printf("  %2.0f epochs are worth %.2f [%.2f, %.2f] of as many fresh tokens\n", at[k], frac[k][0], frac[k][1],
                   frac[k][2]);
        if (f.notes[0]) printf("  note: %s\n", f.notes);
    }
    law_fit_free(&f);
    return 0;
}

/* `--law approach2`, per arm: the IsoFLOP parabolas, and beside them approach 3 on the same points and
 * approach 2's design bias under that law (laws.h), so the two approaches are read side by side. */
static int fit_isoflop(const PointSet *ps, const FitOptions *o, int json, JsonWriter *w, Status *st) {
    if (json) jw_key(w, "arms"), jw_array_begin(w);
    int rc = 0;
    for (int arm = 0; arm < ps->n_arms && !rc; arm++) {
        FitPoint *pts;
        int n = points_of_arm(ps, arm, &pts);
        if (n < 0) return status_fail(st, AP_ENOMEM, "out of memory");
        Approach2Fit a;
        LawFit f3;
        int has3 = 0;
        if ((rc = fit_chinchilla_approach2(pts, n, o, &a, st))) {
            status_wrap(st, "arm '%s'", ps->arms[arm]);
            free(pts);
            break;
        }
        Status s3 = {0};
        if (fit_chinchilla_approach3(pts, n, o, &f3, &s3) == 0) {
            has3 = 1;
            if ((rc = approach2_design_bias(pts, n, &f3, &a, st))) law_fit_free(&f3), has3 = 0;
        }
        free(pts);
        if (rc) {
            approach2_free(&a);
            break;
        }
        double corrected = a.a.value - a.bias;
        int flagged = approach2_bias_flagged(&a);
        if (json) {
            jw_object_begin(w);
            jw_key(w, "arm"), jw_string(w, ps->arms[arm]);
            jw_key(w, "budgets"), jw_array_begin(w);
            for (int g = 0; g < a.n_groups; g++) {
                if (!a.g[g].n) continue;
                jw_object_begin(w);
                jw_key(w, "budget"), jw_number(w, "%.6g", a.g[g].budget);
                jw_key(w, "n"), jw_int(w, a.g[g].n);
                jw_key(w, "n_opt"), jw_number(w, "%.6g", a.g[g].n_opt);
                jw_key(w, "loss_opt"), jw_number(w, "%.6g", a.g[g].l_opt);
                jw_key(w, "grid_lo"), jw_number(w, "%.6g", a.g[g].grid_lo);
                jw_key(w, "grid_hi"), jw_number(w, "%.6g", a.g[g].grid_hi);
                jw_key(w, "ok"), jw_bool(w, a.g[g].ok);
                jw_object_end(w);
            }
            jw_array_end(w);
            json_param(w, "a", &a.a);
            json_param(w, "b", &a.b);
            jw_key(w, "identified"), jw_bool(w, a.identified);
            jw_key(w, "design_bias"), jw_number(w, "%.6g", a.bias);
            jw_key(w, "a_corrected"), jw_number(w, "%.6g", corrected);
            jw_key(w, "bias_flagged"), jw_bool(w, flagged);
            if (has3) json_param(w, "a_approach3", &f3.a_exp);
            jw_key(w, "fit_notes"), jw_string(w, a.notes);
            jw_object_end(w);
        } else {
            printf("\narm %s, approach 2 (IsoFLOP parabolas):\n", ps->arms[arm]);
            for (int g = 0; g < a.n_groups; g++)
                if (a.g[g].n)
                    printf("  budget %10.4g: %2d models (N %.3g..%.3g), optimum N* = %.4g (loss %.4f)%s%s\n",
                           a.g[g].budget, a.g[g].n, a.g[g].grid_lo, a.g[g].grid_hi, a.g[g].n_opt, a.g[g].l_opt,
                           a.g[g].ok ? "" : "  -- ", a.g[g].why);
            print_param("a", &a.a);
            print_param("b", &a.b);
            printf("  N* ~ C^a, D* ~ C^b. %s\n", a.notes);
            if (has3) {
                printf("  side by side, N* ~ C^a:\n");
                if (isfinite(a.a.value)) printf("    approach 2            %8.4f [%.4f, %.4f]\n", a.a.value, a.a.lo, a.a.hi);
                else printf("    approach 2            none (fewer than 2 budgets with an interior minimum)\n");
                if (isfinite(a.bias))
                    printf("    approach 2 corrected  %8.4f  (design bias %+.4f: approach 2 on the approach-3 law's "
                           "noise-free losses at these points gives %.4f where the law has %.4f)%s\n",
                           corrected, a.bias, a.a_law + a.bias, a.a_law,
                           flagged ? "\n    FLAGGED: the grid of sizes is lopsided around the optimum; approach 2's "
                                     "exponent is biased on this design" : "");
                printf("    approach 3            %8.4f [%.4f, %.4f]%s\n", f3.a_exp.value, f3.a_exp.lo, f3.a_exp.hi,
                       f3.identified ? "" : "  (law not identified)");
            } else printf("  approach 3 could not be fitted on these points (%s): no design bias\n", s3.msg);
        }
        if (has3) law_fit_free(&f3);
        approach2_free(&a);
    }
    if (json) jw_array_end(w);
    return rc;
}

/* One arm's holdout check, as text or as a member of the open object. */
static void print_holdout(const Holdout *h, int json, JsonWriter *w) {
    if (json) {
        jw_key(w, "holdout"), jw_object_begin(w);
        jw_key(w, "k"), jw_int(w, h->k);
        jw_key(w, "inside"), jw_int(w, h->n_inside);
        jw_key(w, "why"), jw_string(w, h->why);
        jw_key(w, "budgets"), jw_array_begin(w);
        for (int j = 0; j < h->k; j++) {
            jw_object_begin(w);
            jw_key(w, "flops"), jw_number(w, "%.6g", h->flops[j]);
            jw_key(w, "observed"), jw_number(w, "%.6g", h->observed[j]);
            jw_key(w, "predicted"), jw_number(w, "%.6g", h->predicted[j]);
            jw_key(w, "lo"), jw_number(w, "%.6g", h->lo[j]);
            jw_key(w, "hi"), jw_number(w, "%.6g", h->hi[j]);
            jw_key(w, "error"), jw_number(w, "%.6g", h->error[j]);
            jw_key(w, "inside"), jw_bool(w, h->inside[j]);
            jw_object_end(w);
        }
        jw_array_end(w);
        jw_object_end(w);
        return;
    }
    if (!h->k) {
        printf("  holdout: not checked (%s)\n", h->why);
        return;
    }
    printf("  holdout: fitted without its %d largest budget%s, the law predicts %d of them inside the 95%% "
           "prediction interval%s%s\n", h->k, h->k == 1 ? "" : "s", h->n_inside, h->why[0] ? "; " : "", h->why);
    for (int j = 0; j < h->k; j++)
        printf("    C %10.4g: loss %.4f, predicted %.4f [%.4f, %.4f], error %+.2f%%%s\n", h->flops[j], h->observed[j],
               h->predicted[j], h->lo[j], h->hi[j], 100 * h->error[j], h->inside[j] ? "" : "  -- MISSED");
}

/* `--law frontier`: every arm's frontier, then the CEG of every arm over the first. */
static int fit_frontiers(const PointSet *ps, const FitOptions *o, int holdout, int json, JsonWriter *w, Status *st) {
    Frontier *fr = calloc((size_t)(ps->n_arms ? ps->n_arms : 1), sizeof *fr);
    if (!fr) return status_fail(st, AP_ENOMEM, "out of memory");
    if (frontier_fit_arms(ps->p, ps->n, ps->n_arms, o, fr, st)) {
        free(fr);
        return -1;
    }
    if (json) {
        const Frontier *f0 = &fr[0];
        jw_key(w, "noise"), jw_object_begin(w);
        jw_key(w, "sigma"), jw_number(w, "%.6g", f0->sigma0);
        jw_key(w, "dof"), jw_int(w, f0->dof);
        jw_key(w, "from_replicates"), jw_bool(w, f0->from_replicates);
        jw_object_end(w);
        jw_key(w, "arms"), jw_array_begin(w);
    } else
        printf("noise of one seed's frontier ln loss: %.3g with %d dof, from %s\n", fr[0].sigma0, fr[0].dof,
               fr[0].from_replicates ? "seed replicates (pooled over budgets and arms)"
                                     : "the laws' residuals: no seed replicates anywhere");
    Holdout *ho = holdout ? calloc((size_t)ps->n_arms, sizeof *ho) : NULL;
    if (holdout && (!ho || frontier_holdout(ps->p, ps->n, ps->n_arms, holdout, fr, o, ho, st))) {
        if (!ho) status_fail(st, AP_ENOMEM, "out of memory");
        for (int a = 0; a < ps->n_arms; a++) frontier_free(&fr[a]);
        free(fr), free(ho);
        return -1;
    }
    for (int a = 0; a < ps->n_arms; a++) {
        int runs = 0;
        for (int i = 0; i < ps->n; i++) runs += ps->p[i].arm == a;
        print_frontier(ps->arms[a], runs, &fr[a], json, w, ho ? &ho[a] : NULL);
    }
    free(ho);
    if (json) jw_array_end(w);
    if (ps->n_arms > 1) {
        if (json) jw_key(w, "ceg"), jw_array_begin(w);
        for (int a = 1; a < ps->n_arms; a++) {
            CegCurve c;
            Status cs = {0};
            if (ceg_pair(&fr[0], &fr[a], CEG_REPORT_LEVELS, o, &c, &cs)) {
                if (!json) printf("\nCEG of %s over %s: %s\n", ps->arms[a], ps->arms[0], cs.msg);
                else { /* the pair stays in the JSON, with why it has no levels */
                    jw_object_begin(w);
                    jw_key(w, "arm"), jw_string(w, ps->arms[a]);
                    jw_key(w, "reference"), jw_string(w, ps->arms[0]);
                    jw_key(w, "levels"), jw_array_begin(w), jw_array_end(w);
                    jw_key(w, "error"), jw_string(w, cs.msg);
                    jw_object_end(w);
                }
                continue;
            }
            print_ceg(ps->arms[0], ps->arms[a], &c, json, w);
        }
        if (json) jw_array_end(w);
    }
    for (int a = 0; a < ps->n_arms; a++) frontier_free(&fr[a]);
    free(fr);
    return 0;
}

int cmd_fit(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_fit, stderr), 2;
    const char *law = "frontier";
    int json = 0, holdout = 0, axis = COST_FLOPS, n_rename = 0;
    const char *rename[32] = {NULL};
    FitOptions o;
    fit_options_default(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--law") && i + 1 < argc) law = argv[++i];
        else if (!strcmp(argv[i], "--boot") && i + 1 < argc) o.n_boot = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) o.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--col") && i + 1 < argc) {
            if (n_rename == 31) return fputs("algoprog: error: at most 31 --col options\n", stderr), 2;
            rename[n_rename++] = argv[++i];
        } else if (!strcmp(argv[i], "--cost") && i + 1 < argc) {
            if ((axis = cost_axis_parse(argv[++i])) < 0)
                return fprintf(stderr, "algoprog: error: --cost %s: choose flops, seconds, params, kv_bytes or memory\n",
                               argv[i]), 2;
        } else if (!strcmp(argv[i], "--holdout") && i + 1 < argc) {
            const char *v = argv[++i];
            char *end = NULL;
            holdout = !strcmp(v, "top") ? 1 : !strncmp(v, "top=", 4) ? (int)strtol(v + 4, &end, 10) : -1;
            if (holdout < 1 || holdout > HOLDOUT_MAX || (end && *end))
                return fprintf(stderr, "algoprog: error: --holdout %s: say top or top=K with K in 1..%d\n", v,
                               HOLDOUT_MAX), 2;
        }
        else return fprintf(stderr, "algoprog: error: unknown argument '%s'\n%s", argv[i], cli_usage_fit), 2;
    }
    if (holdout && strcmp(law, "frontier"))
        return fputs("algoprog: error: --holdout checks frontier laws: use it with --law frontier\n", stderr), 2;
    if (strcmp(law, "frontier") && strcmp(law, "approach2") && strcmp(law, "approach3") && strcmp(law, "muennighoff"))
        return fprintf(stderr, "algoprog: error: --law %s: choose frontier, approach2, approach3 or muennighoff\n",
                       law), 2;
    if (o.n_boot < 0 || o.n_boot > 1000000) return fputs("algoprog: error: --boot must be 0..1000000\n", stderr), 2;
    Status st = {0};
    PointSet ps;
    char reg[1100];
    snprintf(reg, sizeof reg, "%s/registry.db", argv[0]);
    if (axis != COST_FLOPS && strcmp(law, "frontier"))
        return fputs("algoprog: error: --cost applies to frontiers and CEGs: use it with --law frontier\n", stderr), 2;
    int rc = file_exists(reg) ? results_points(argv[0], axis, &ps, &st) : points_read_csv_axis(&ps, argv[0], axis, rename, &st);
    if (!rc && (rc = points_cost_axis(&ps, axis, &st))) points_free(&ps);
    if (rc) return cli_fail(&st);
    StrBuf jb = {0};
    JsonWriter jw;
    jw_init(&jw, &jb);
    JsonWriter *w = &jw;
    if (json) {
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)o.seed); /* all 64 bits */
        jw_object_begin(w);
        jw_key(w, "law"), jw_string(w, law);
        jw_key(w, "cost"), jw_string(w, cost_axis_names[axis]);
        jw_key(w, "points"), jw_int(w, ps.n);
        jw_key(w, "n_boot"), jw_int(w, o.n_boot);
        jw_key(w, "seed"), jw_raw(w, seed);
        jw_key(w, "notes"), jw_string(w, ps.notes);
    } else {
        printf("%d points, %d arm%s; %d bootstrap resamples (seed %llu), 95%% intervals. %s\n", ps.n, ps.n_arms,
               ps.n_arms == 1 ? "" : "s", o.n_boot, (unsigned long long)o.seed, ps.notes);
        if (axis != COST_FLOPS)
            printf("cost axis: %s. Each arm's frontier is its Pareto front (runs of one configuration averaged over "
                   "seeds); below, 'C' and 'FLOPs' stand for %s.\n", cost_axis_names[axis], cost_axis_names[axis]);
    }
    if (!strcmp(law, "approach2")) {
        rc = fit_isoflop(&ps, &o, json, w, &st);
        if (json && !rc) {
            jw_object_end(w);
            json_print(&jb);
        } else sb_free(&jb);
        points_free(&ps);
        return rc ? cli_fail(&st) : 0;
    }
    if (!strcmp(law, "frontier")) {
        rc = fit_frontiers(&ps, &o, holdout, json, w, &st);
        if (json && !rc) {
            jw_object_end(w);
            json_print(&jb);
        } else sb_free(&jb);
        points_free(&ps);
        return rc ? cli_fail(&st) : 0;
    }
    if (!strcmp(law, "muennighoff")) {
        rc = fit_repetition(&ps, &o, json, w, &st);
        if (json && !rc) {
            jw_object_end(w);
            json_print(&jb);
        } else sb_free(&jb);
        points_free(&ps);
        return rc ? cli_fail(&st) : 0;
    }
    /* approach 3: L(N, D) per arm */
    LawFit *fits = calloc((size_t)(ps.n_arms ? ps.n_arms : 1), sizeof *fits);
    if (!fits) rc = status_fail(&st, AP_ENOMEM, "out of memory");
    if (json) jw_key(w, "arms"), jw_array_begin(w);
    for (int a = 0; fits && a < ps.n_arms; a++) {
        FitPoint *pts;
        int n = points_of_arm(&ps, a, &pts);
        rc = n < 0 ? status_fail(&st, AP_ENOMEM, "out of memory") : fit_chinchilla_approach3(pts, n, &o, &fits[a], &st);
        free(pts);
        if (rc) {
            status_wrap(&st, "arm '%s'", ps.arms[a]);
            break;
        }
        LawFit *f = &fits[a];
        static const char *names[] = {"E", "A", "B", "alpha", "beta"};
        if (json) {
            jw_object_begin(w);
            jw_key(w, "arm"), jw_string(w, ps.arms[a]);
            jw_key(w, "points"), jw_int(w, f->n_points);
            for (int k = 0; k < f->n_params; k++) json_param(w, names[k], &f->p[k]);
            json_param(w, "a", &f->a_exp);
            json_param(w, "b", &f->b_exp);
            jw_key(w, "rmse_log"), jw_number(w, "%.6g", f->rmse_log);
            jw_key(w, "identified"), jw_bool(w, f->identified);
            jw_key(w, "fit_notes"), jw_string(w, f->notes);
            jw_object_end(w);
        } else {
            printf("\narm %s: %d points, L(N,D) = E + A/N^alpha + B/D^beta, rmse of log loss %.4f\n", ps.arms[a],
                   f->n_points, f->rmse_log);
            for (int k = 0; k < f->n_params; k++) print_param(names[k], &f->p[k]);
            print_param("a", &f->a_exp);
            printf("  (compute-optimal N ~ C^a, D ~ C^(1-a))\n");
            if (f->notes[0]) printf("  note: %s\n", f->notes);
        }
    }
    if (json) jw_array_end(w);
    if (json) {
        jw_object_end(w);
        json_print(&jb);
    }
    for (int a = 0; fits && a < ps.n_arms; a++) law_fit_free(&fits[a]);
    free(fits);
    points_free(&ps);
    return rc ? cli_fail(&st) : 0;
}
