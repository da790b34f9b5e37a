/* cmd_fit.c - `algoprog fit`: scaling laws and compute-equivalent gains from any points. */
#include "cli/cli.h"

#include "core/fileio.h"
#include "fit/ceg.h"
#include "fit/laws.h"
#include "fit/points.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE_FIT =
    "usage: algoprog fit POINTS.csv|STUDY_DIR [--law frontier|approach2|approach3] [--json] [--boot N] [--seed S]\n"
    "  POINTS.csv: columns among arm, params, tokens, flops, loss (a study's runs.csv works as is)\n"
    "  frontier (default): L(C) = E + A C^-alpha per arm, and CEG of every arm over the first\n"
    "  approach2: IsoFLOP parabolas per budget, N*(C) and D*(C) exponents\n"
    "  approach3: L(N, D) = E + A/N^alpha + B/D^beta per arm (Huber, L-BFGS, grid of starts)\n";

static void json_param(FILE *o, const char *name, const FitParam *p, int last) {
    fprintf(o, "\"%s\": %.10g, \"%s_lo\": %.10g, \"%s_hi\": %.10g, \"%s_identified\": %s%s", name, p->value, name,
            isfinite(p->lo) ? p->lo : 0, name, isfinite(p->hi) ? p->hi : 0, name, p->identified ? "true" : "false",
            last ? "" : ", ");
}

static void print_param(const char *name, const FitParam *p) {
    printf("  %-6s %12.5g   [%.5g, %.5g]%s\n", name, p->value, p->lo, p->hi, p->identified ? "" : "   not identified");
}

int cmd_fit(int argc, char **argv) {
    if (argc < 1) return fputs(USAGE_FIT, stderr), 2;
    const char *law = "frontier";
    int json = 0;
    FitOptions o;
    fit_options_default(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--law") && i + 1 < argc) law = argv[++i];
        else if (!strcmp(argv[i], "--boot") && i + 1 < argc) o.n_boot = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) o.seed = strtoull(argv[++i], NULL, 10);
        else return fprintf(stderr, "algoprog: error: unknown argument '%s'\n%s", argv[i], USAGE_FIT), 2;
    }
    if (strcmp(law, "frontier") && strcmp(law, "approach2") && strcmp(law, "approach3"))
        return fprintf(stderr, "algoprog: error: --law %s: choose frontier, approach2 or approach3\n", law), 2;
    if (o.n_boot < 0 || o.n_boot > 1000000) return fputs("algoprog: error: --boot must be 0..1000000\n", stderr), 2;
    Status st = {0};
    PointSet ps;
    char reg[1100];
    snprintf(reg, sizeof reg, "%s/registry.db", argv[0]);
    int rc = file_exists(reg) ? points_from_registry(&ps, argv[0], &st) : points_read_csv(&ps, argv[0], &st);
    if (rc) return cli_fail(&st);
    FILE *out = stdout;
    if (json) fprintf(out, "{\"law\": \"%s\", \"points\": %d, \"n_boot\": %d, \"seed\": %llu, \"notes\": \"%s\", ",
                      law, ps.n, o.n_boot, (unsigned long long)o.seed, ps.notes);
    else printf("%d points, %d arm%s; %d bootstrap resamples (seed %llu), 95%% intervals. %s\n", ps.n, ps.n_arms,
                ps.n_arms == 1 ? "" : "s", o.n_boot, (unsigned long long)o.seed, ps.notes);
    if (!strcmp(law, "approach2")) {
        Approach2Fit a;
        if (fit_chinchilla_approach2(ps.p, ps.n, &o, &a, &st)) {
            points_free(&ps);
            return cli_fail(&st);
        }
        if (json) {
            fprintf(out, "\"budgets\": [");
            for (int g = 0; g < a.n_groups; g++)
                fprintf(out, "%s{\"budget\": %.6g, \"n\": %d, \"n_opt\": %.6g, \"loss_opt\": %.6g, \"ok\": %s}",
                        g ? ", " : "", a.g[g].budget, a.g[g].n, a.g[g].n_opt, a.g[g].l_opt, a.g[g].ok ? "true" : "false");
            fprintf(out, "], ");
            json_param(out, "a", &a.a, 0);
            json_param(out, "b", &a.b, 0);
            fprintf(out, "\"identified\": %s, \"fit_notes\": \"%s\"}\n", a.identified ? "true" : "false", a.notes);
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
    if (json) fprintf(out, "\"arms\": [");
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
            fprintf(out, "%s{\"arm\": \"%s\", \"points\": %d, ", a ? ", " : "", ps.arms[a], f->n_points);
            for (int k = 0; k < f->n_params; k++) json_param(out, names[k], &f->p[k], 0);
            if (is3) {
                json_param(out, "a", &f->a_exp, 0);
                json_param(out, "b", &f->b_exp, 0);
            }
            fprintf(out, "\"rmse_log\": %.6g, \"identified\": %s, \"fit_notes\": \"%s\"}", f->rmse_log,
                    f->identified ? "true" : "false", f->notes);
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
    if (json) fprintf(out, "]");
    if (!rc && !is3 && ps.n_arms > 1) { /* CEG of each arm over the first */
        if (json) fprintf(out, ", \"ceg\": [");
        for (int a = 1; a < ps.n_arms; a++) {
            CegCurve c;
            if (ceg_compute(&fits[0], &fits[a], 5, o.level, &c)) {
                if (!json) printf("\nCEG of %s over %s: the two frontiers share no loss range\n", ps.arms[a], ps.arms[0]);
                continue;
            }
            if (json) {
                fprintf(out, "%s{\"arm\": \"%s\", \"reference\": \"%s\", \"levels\": [", a > 1 ? ", " : "", ps.arms[a],
                        ps.arms[0]);
                for (int k = 0; k < c.n; k++)
                    fprintf(out, "%s{\"loss\": %.6g, \"compute_ref\": %.6g, \"ceg\": %.6g, \"ceg_lo\": %.6g, \"ceg_hi\": "
                                 "%.6g, \"extrapolated\": %s}",
                            k ? ", " : "", c.lv[k].loss, c.lv[k].c_ref, c.lv[k].ceg, isfinite(c.lv[k].lo) ? c.lv[k].lo : -1,
                            isfinite(c.lv[k].hi) ? c.lv[k].hi : -1, c.lv[k].extrapolated ? "true" : "false");
                fprintf(out, "], \"slope\": %.6g, \"slope_lo\": %.6g, \"slope_hi\": %.6g, \"trend\": \"%s\", "
                             "\"determined\": %s}",
                        c.slope, c.slope_lo, c.slope_hi, c.trend, c.determined ? "true" : "false");
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
        if (json) fprintf(out, "]");
    }
    if (json) fprintf(out, "}\n");
    for (int a = 0; a < ps.n_arms; a++) law_fit_free(&fits[a]);
    free(fits);
    points_free(&ps);
    return rc ? cli_fail(&st) : 0;
}
