/* cmd_account.c - `algoprog account`: progress-rate arithmetic (claims C13, C14). */
#include "cli/cli.h"

#include "core/fileio.h"
#include "fit/account.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_account =
    "usage: algoprog account rate years=Y (factor=F | annual=M | oom_per_year=R | halving_months=H)\n"
    "       algoprog account decompose total=F years=Y NAME=FACTOR ...   (e.g. hardware=6 data=8)\n"
    "       algoprog account fit POINTS.csv      columns year, compute (to reach a fixed result)\n"
    "       algoprog account simulate [steady=1.25 gain0=2 slope=0.15 compute_growth=4 frontier_share=...]\n"
    "       algoprog account seeds               the seed essays' numbers, converted\n";

static int kv(const char *arg, char *key, size_t ksize, double *val) {
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= ksize) return -1;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    char *end;
    errno = 0;
    *val = strtod(eq + 1, &end);
    return errno || end == eq + 1 || *end || !isfinite(*val) ? -2 : 0;
}

static void print_rate(const char *label, const Rate *r) {
    printf("%-44s %10.4gx over %4.1f years = %6.3fx/year = %6.3f OOM/year = halving every %5.1f months\n", label,
           r->factor, r->years, r->annual, r->oom_per_year, r->halving_months);
}

static int rate_of(double years, double factor, double annual, double oom, double halving, Rate *r, Status *st) {
    *r = (Rate){factor, years, annual, oom, halving};
    return rate_complete(r, st);
}

int cmd_account(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_account, stderr), 2;
    Status st = {0};
    const char *what = argv[0];
    if (!strcmp(what, "seeds")) {
        Rate r;
        printf("The seed essays' numbers, converted exactly (C14):\n");
        rate_of(7, 600, NAN, NAN, NAN, &r, &st), print_rate("nanochat vs GPT-2: 600x in 7 years", &r);
        rate_of(7, NAN, 4, NAN, NAN, &r, &st), print_rate("\"4x/year\" compounded over 7 years", &r);
        rate_of(11, NAN, NAN, 0.5, NAN, &r, &st), print_rate("0.5 OOM/year over 2012-2023", &r);
        rate_of(11, NAN, NAN, NAN, 8, &r, &st), print_rate("an 8-month halving over 2012-2023", &r);
        rate_of(1, NAN, 1.68, NAN, NAN, &r, &st), print_rate("1.68x/year (Amodei's 2020 figure)", &r);
        rate_of(1, NAN, 3, NAN, NAN, &r, &st), print_rate("3x/year (price-performance, open models)", &r);
        Factor f[] = {{"hardware (FLOP/$)", 6}, {"learning algorithms", 5}, {"optimisations", 2.5}, {"data", 8}};
        Decomposition d;
        decompose(600, f, 4, &d, &st);
        printf("\n600x = 6 (hardware) x 5 (algorithms) x 2.5 (optimisations) x 8 (data) = %.0fx; residual %.3fx\n",
               d.product, d.residual);
        for (int i = 0; i < 4; i++) printf("  %-22s %5.1fx  %4.0f%% of the log\n", f[i].name, f[i].factor, 100 * d.share[i]);
        return 0;
    }
    if (!strcmp(what, "rate")) {
        double years = NAN, vals[4] = {NAN, NAN, NAN, NAN};
        static const char *keys[4] = {"factor", "annual", "oom_per_year", "halving_months"};
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            int ok = 0;
            if (!strcmp(key, "years")) years = v, ok = 1;
            for (int k = 0; k < 4; k++)
                if (!strcmp(key, keys[k])) vals[k] = v, ok = 1;
            if (!ok) return fprintf(stderr, "algoprog: error: unknown key '%s'\n%s", key, cli_usage_account), 2;
        }
        Rate r;
        if (rate_of(years, vals[0], vals[1], vals[2], vals[3], &r, &st)) return cli_fail(&st);
        print_rate("", &r);
        return 0;
    }
    if (!strcmp(what, "decompose")) {
        double total = NAN, years = NAN;
        Factor f[32] = {{"", 0}};
        int n = 0;
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            if (!strcmp(key, "total")) total = v;
            else if (!strcmp(key, "years")) years = v;
            else if (n < 32) snprintf(f[n].name, sizeof f[n].name, "%s", key), f[n++].factor = v;
        }
        Decomposition d;
        if (decompose(total, f, n, &d, &st)) return cli_fail(&st);
        printf("total %.4gx = product of factors %.4gx x residual %.4gx\n", total, d.product, d.residual);
        for (int i = 0; i < n; i++) {
            printf("  %-20s %8.3gx  %5.1f%% of the log", f[i].name, f[i].factor, 100 * d.share[i]);
            if (isfinite(years)) {
                Rate r;
                rate_of(years, f[i].factor, NAN, NAN, NAN, &r, &st);
                printf("  (%.3fx/year)", r.annual);
            }
            printf("\n");
        }
        printf("  %-20s %8.3gx  %5.1f%% of the log (unexplained)\n", "residual", d.residual, 100 * d.residual_share);
        if (isfinite(years)) {
            Rate r;
            rate_of(years, total, NAN, NAN, NAN, &r, &st);
            print_rate("total", &r);
        }
        return 0;
    }
    if (!strcmp(what, "fit")) {
        if (argc < 2) return fputs(cli_usage_account, stderr), 2;
        char *text;
        size_t len;
        if (file_read_all(argv[1], &text, &len, 1 << 26, &st)) return cli_fail(&st);
        double *yr = malloc(len * sizeof *yr), *c = malloc(len * sizeof *c);
        int n = 0, line = 0, yc = -1, cc = -1;
        for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
            line++;
            if (line == 1) { /* header */
                int col = 0;
                for (char *h = l; h; col++) {
                    char *comma = strchr(h, ',');
                    size_t hl = comma ? (size_t)(comma - h) : strlen(h);
                    if (hl == 4 && !strncmp(h, "year", 4)) yc = col;
                    if (hl == 7 && !strncmp(h, "compute", 7)) cc = col;
                    h = comma ? comma + 1 : NULL;
                }
                continue;
            }
            double v[64];
            int col = 0;
            for (char *p = l; p && col < 64; col++) {
                v[col] = strtod(p, NULL);
                p = strchr(p, ',');
                if (p) p++;
            }
            if (yc < 0 || cc < 0 || yc >= col || cc >= col) break;
            yr[n] = v[yc], c[n++] = v[cc];
        }
        free(text);
        RateFit f;
        int rc = yc < 0 || cc < 0 ? status_fail(&st, AP_EINVAL, "%s: need columns 'year' and 'compute'", argv[1])
                                  : rate_fit(yr, c, n, 2000, 42, &f, &st);
        free(yr), free(c);
        if (rc) return cli_fail(&st);
        printf("%d points: needed compute falls %.3f OOM/year [%.3f, %.3f] = halving every %.1f months [%.1f, %.1f]\n", f.n,
               f.oom_per_year, f.lo, f.hi, f.halving_months, f.halving_lo, f.halving_hi);
        return 0;
    }
    if (!strcmp(what, "simulate")) {
        Simulation s;
        simulation_default(&s);
        int share_given = 0;
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            if (!strcmp(key, "steady")) s.steady = v;
            else if (!strcmp(key, "gain0")) s.gain0 = v;
            else if (!strcmp(key, "slope")) s.slope = v;
            else if (!strcmp(key, "compute_growth")) s.compute_growth = v;
            else if (!strcmp(key, "frontier_share")) s.frontier_share = v, share_given = 1;
            else if (!strcmp(key, "switch_year")) s.switch_year = v;
            else if (!strcmp(key, "seed")) s.seed = (uint64_t)v;
            else return fprintf(stderr, "algoprog: error: unknown key '%s'\n%s", key, cli_usage_account), 2;
        }
        Rate truth;
        rate_of(1, NAN, s.steady, NAN, NAN, &truth, &st);
        printf("world: steady progress %.3gx/year (a true halving time of %.1f months) plus one innovation in %.0f whose\n"
               "gain is %.3gx at the small scale and grows as C^%.3g; frontier compute grows %.3gx/year (C13)\n\n",
               s.steady, truth.halving_months, s.switch_year, s.gain0, s.slope, s.compute_growth);
        printf("%-26s %-34s\n", "models at the frontier", "fitted halving time (95% CI)");
        double shares[] = {0, 0.25, 0.5, 0.75, 1.0};
        for (int i = 0; i < (share_given ? 1 : 5); i++) {
            if (!share_given) s.frontier_share = shares[i];
            RateFit f;
            if (simulate_rate(&s, &f, &st)) return cli_fail(&st);
            printf("%-26.0f %.1f months [%.1f, %.1f]\n", 100 * s.frontier_share, f.halving_months, f.halving_lo,
                   f.halving_hi);
        }
        printf("\nThe same world gives different \"halving times\" depending on which scales the sample holds.\n");
        return 0;
    }
    return fputs(cli_usage_account, stderr), 2;
}
