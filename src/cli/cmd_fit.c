/* cmd_fit.c - `algoprog fit`: scaling laws and compute-equivalent gains from any points. */
#include "cli/cli.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "fit/ceg.h"
#include "fit/laws.h"
#include "fit/points.h"
#include "report/results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_fit =
    "usage: algoprog fit POINTS.csv|STUDY_DIR [--law frontier|approach2|approach3] [--json] [--boot N] [--seed S]\n"
    "  POINTS.csv: columns among arm, params, tokens, flops, loss (a study's runs.csv works as is)\n"
    "  frontier (default): L(C) = E + A C^-alpha per arm, and CEG of every arm over the first\n"
    "  approach2: IsoFLOP parabolas per budget, N*(C) and D*(C) exponents\n"
    "  approach3: L(N, D) = E + A/N^alpha + B/D^beta per arm (Huber, L-BFGS, grid of starts)\n";

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

int cmd_fit(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_fit, stderr), 2;
    const char *law = "frontier";
    int json = 0;
    FitOptions o;
    fit_options_default(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--law") && i + 1 < argc) law = argv[++i];
        else if (!strcmp(argv[i], "--boot") && i + 1 < argc) o.n_boot = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) o.seed = strtoull(argv[++i], NULL, 10);
        else return fprintf(stderr, "algoprog: error: unknown argument '%s'\n%s", argv[i], cli_usage_fit), 2;
    }
    if (strcmp(law, "frontier") && strcmp(law, "approach2") && strcmp(law, "approach3"))
        return fprintf(stderr, "algoprog: error: --law %s: choose frontier, approach2 or approach3\n", law), 2;
    if (o.n_boot < 0 || o.n_boot > 1000000) return fputs("algoprog: error: --boot must be 0..1000000\n", stderr), 2;
    Status st = {0};
    PointSet ps;
    char reg[1100];
    snprintf(reg, sizeof reg, "%s/registry.db", argv[0]);
    int rc = file_exists(reg) ? results_points(argv[0], &ps, &st) : points_read_csv(&ps, argv[0], &st);
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
        jw_key(w, "points"), jw_int(w, ps.n);
        jw_key(w, "n_boot"), jw_int(w, o.n_boot);
        jw_key(w, "seed"), jw_raw(w, seed);
        jw_key(w, "notes"), jw_string(w, ps.notes);
    } else printf("%d points, %d arm%s; %d bootstrap resamples (seed %llu), 95%% intervals. %s\n", ps.n, ps.n_arms,
                ps.n_arms == 1 ? "" : "s", o.n_boot, (unsigned long long)o.seed, ps.notes);
    if (!strcmp(law, "approach2")) {
        Approach2Fit a;
        if (fit_chinchilla_approach2(ps.p, ps.n, &o, &a, &st)) {
            points_free(&ps);
            sb_free(&jb);
            return cli_fail(&st);
        }
        if (json) {
            jw_key(w, "budgets"), jw_array_begin(w);
            for (int g = 0; g < a.n_groups; g++) {
                jw_object_begin(w);
                jw_key(w, "budget"), jw_number(w, "%.6g", a.g[g].budget);
                jw_key(w, "n"), jw_int(w, a.g[g].n);
                jw_key(w, "n_opt"), jw_number(w, "%.6g", a.g[g].n_opt);
                jw_key(w, "loss_opt"), jw_number(w, "%.6g", a.g[g].l_opt);
                jw_key(w, "ok"), jw_bool(w, a.g[g].ok);
                jw_object_end(w);
            }
            jw_array_end(w);
            json_param(w, "a", &a.a);
            json_param(w, "b", &a.b);
            jw_key(w, "identified"), jw_bool(w, a.identified);
            jw_key(w, "fit_notes"), jw_string(w, a.notes);
            jw_object_end(w);
            json_print(&jb);
        } else {
            printf("approach 2 (IsoFLOP parabolas):\n");
            for (int g = 0; g < a.n_groups; g++)
                printf("  budget %10.4g: %2d models, optimum N* = %.4g (loss %.4f)%s%s\n", a.g[g].budget, a.g[g].n,
                       a.g[g].n_opt, a.g[g].l_opt, a.g[g].ok ? "" : "  -- ", a.g[g].why);
            print_param("a", &a.a);
            print_param("b", &a.b);
            printf("  N* ~ C^a, D* ~ C^b. %s\n", a.notes);
        }
        points_free(&ps);
        return 0;
    }
    int is3 = !strcmp(law, "approach3");
    LawFit *fits = calloc((size_t)ps.n_arms, sizeof *fits);
    if (json) jw_key(w, "arms"), jw_array_begin(w);
    for (int a = 0; a < ps.n_arms; a++) {
        FitPoint *pts;
        int n = points_of_arm(&ps, a, &pts);
        rc = n < 0 ? status_fail(&st, AP_ENOMEM, "out of memory")
                   : is3 ? fit_chinchilla_approach3(pts, n, &o, &fits[a], &st) : fit_frontier(pts, n, &o, &fits[a], &st);
        free(pts);
        if (rc) {
            status_wrap(&st, "arm '%s'", ps.arms[a]);
            break;
        }
        LawFit *f = &fits[a];
        static const char *n3[] = {"E", "A", "alpha"}, *n5[] = {"E", "A", "B", "alpha", "beta"};
        const char *const *names = is3 ? n5 : n3;
        if (json) {
            jw_object_begin(w);
            jw_key(w, "arm"), jw_string(w, ps.arms[a]);
            jw_key(w, "points"), jw_int(w, f->n_points);
            for (int k = 0; k < f->n_params; k++) json_param(w, names[k], &f->p[k]);
            if (is3) {
                json_param(w, "a", &f->a_exp);
                json_param(w, "b", &f->b_exp);
            }
            jw_key(w, "rmse_log"), jw_number(w, "%.6g", f->rmse_log);
            jw_key(w, "identified"), jw_bool(w, f->identified);
            jw_key(w, "fit_notes"), jw_string(w, f->notes);
            jw_object_end(w);
        } else {
            printf("\narm %s: %d points, %s, rmse of log loss %.4f\n", ps.arms[a], f->n_points,
                   is3 ? "L(N,D) = E + A/N^alpha + B/D^beta" : "L(C) = E + A C^-alpha", f->rmse_log);
            for (int k = 0; k < f->n_params; k++) print_param(names[k], &f->p[k]);
            if (is3) {
                print_param("a", &f->a_exp);
                printf("  (compute-optimal N ~ C^a, D ~ C^(1-a))\n");
            }
            if (f->notes[0]) printf("  note: %s\n", f->notes);
        }
    }
    if (json) jw_array_end(w);
    if (!rc && !is3 && ps.n_arms > 1) { /* CEG of each arm over the first */
        if (json) jw_key(w, "ceg"), jw_array_begin(w);
        for (int a = 1; a < ps.n_arms; a++) {
            CegCurve c;
            if (ceg_compute(&fits[0], &fits[a], 5, o.level, &c)) {
                if (!json) printf("\nCEG of %s over %s: the two frontiers share no loss range\n", ps.arms[a], ps.arms[0]);
                continue;
            }
            if (json) {
                jw_object_begin(w);
                jw_key(w, "arm"), jw_string(w, ps.arms[a]);
                jw_key(w, "reference"), jw_string(w, ps.arms[0]);
                jw_key(w, "levels"), jw_array_begin(w);
                for (int k = 0; k < c.n; k++) {
                    jw_object_begin(w);
                    jw_key(w, "loss"), jw_number(w, "%.6g", c.lv[k].loss);
                    jw_key(w, "compute_ref"), jw_number(w, "%.6g", c.lv[k].c_ref);
                    jw_key(w, "ceg"), jw_number(w, "%.6g", c.lv[k].ceg);
                    jw_key(w, "ceg_lo"), jw_number(w, "%.6g", isfinite(c.lv[k].lo) ? c.lv[k].lo : -1); /* -1: unbounded */
                    jw_key(w, "ceg_hi"), jw_number(w, "%.6g", isfinite(c.lv[k].hi) ? c.lv[k].hi : -1);
                    jw_key(w, "extrapolated"), jw_bool(w, c.lv[k].extrapolated);
                    jw_object_end(w);
                }
                jw_array_end(w);
                jw_key(w, "slope"), jw_number(w, "%.6g", c.slope);
                jw_key(w, "slope_lo"), jw_number(w, "%.6g", c.slope_lo);
                jw_key(w, "slope_hi"), jw_number(w, "%.6g", c.slope_hi);
                jw_key(w, "trend"), jw_string(w, c.trend);
                jw_key(w, "determined"), jw_bool(w, c.determined);
                jw_object_end(w);
            } else {
                printf("\nCEG of %s over %s (how many times less compute %s needs for the same loss):\n", ps.arms[a],
                       ps.arms[0], ps.arms[a]);
                for (int k = 0; k < c.n; k++)
                    printf("  loss %.4f (%s needs %.3g FLOPs): %.3gx [%.3g, %.3g]%s\n", c.lv[k].loss, ps.arms[0],
                           c.lv[k].c_ref, c.lv[k].ceg, c.lv[k].lo, c.lv[k].hi,
                           c.lv[k].extrapolated ? "  (extrapolated)" : "");
                printf("  scale dependence: d log CEG / d log C = %.3g [%.3g, %.3g]: %s\n", c.slope, c.slope_lo,
                       c.slope_hi, c.trend);
                if (!c.determined)
                    printf("  not determined: a frontier above rests on too few budgets, so these numbers only illustrate\n");
            }
        }
        if (json) jw_array_end(w);
    }
    if (json) {
        jw_object_end(w);
        json_print(&jb);
    }
    for (int a = 0; a < ps.n_arms; a++) law_fit_free(&fits[a]);
    free(fits);
    points_free(&ps);
    return rc ? cli_fail(&st) : 0;
}
