/* test_fit.c - scaling-law fits on synthetic data with planted parameters: recovery, robustness
 * to outliers (Huber vs least squares), bootstrap coverage, CEG of identical arms, approach 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "fit/account.h"
#include "fit/ceg.h"
#include "fit/frontier.h"
#include "fit/laws.h"
#include "fit/points.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* frontier points L = E + A C^-alpha with multiplicative log-normal noise */
static void law_points(FitPoint *p, int n, const double *truth, double sigma, Rng *r) {
    for (int i = 0; i < n; i++) {
        double C = 1e12 * pow(1e4, (double)i / (n - 1));
        p[i].flops = C, p[i].params = sqrt(C / 120), p[i].tokens = C / (6 * p[i].params);
        p[i].loss = frontier_loss(truth, C) * exp(sigma * rng_normal(r));
        p[i].arm = 0, p[i].group = i, p[i].seed = 0;
    }
}

static void test_frontier_recovery(void **state) {
    (void)state;
    const double truth[3] = {1.0, 1000.0, 0.2};
    FitPoint p[10];
    Rng r;
    rng_seed(&r, 1);
    law_points(p, 10, truth, 0.003, &r);
    LawFit f;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    assert_int_equal(fit_frontier(p, 10, &o, &f, &st), 0);
    const char *names[] = {"E", "A", "alpha"};
    for (int k = 0; k < 3; k++) {
        printf("  %-6s truth %8.4g  estimate %8.4g  CI [%.4g, %.4g]%s\n", names[k], truth[k], f.p[k].value, f.p[k].lo,
               f.p[k].hi, f.p[k].identified ? "" : "  not identified");
        assert_true(f.p[k].lo <= truth[k] && truth[k] <= f.p[k].hi);
        /* A trades off against alpha and is only loosely pinned down: its interval must cover */
        if (k != 1) assert_true(fabs(f.p[k].value / truth[k] - 1) < 0.1);
    }
    assert_true(f.identified);
    law_fit_free(&f);
    /* too few budgets: said, not hidden */
    assert_int_equal(fit_frontier(p, 3, &o, &f, &st), 0);
    assert_false(f.identified);
    law_fit_free(&f);
}

/* Approach 3 on the points with `boot` resamples, each parameter printed beside its planted value. */
static void approach3_against(const FitPoint *p, int n, int boot, const double *truth, LawFit *f) {
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = boot;
    assert_int_equal(fit_chinchilla_approach3(p, n, &o, f, &st), 0);
    const char *names[] = {"E", "A", "B", "alpha", "beta"};
    for (int k = 0; k < 5; k++)
        printf("  %-6s truth %9.4g  estimate %9.4g  95%% CI [%.4g, %.4g]\n", names[k], truth[k], f->p[k].value,
               f->p[k].lo, f->p[k].hi);
}

static void test_approach3_recovery(void **state) {
    (void)state;
    /* Chinchilla's own law (Hoffmann et al. 2022, Epoch's unrounded values) */
    const double truth[5] = {1.6934, 406.4, 410.7, 0.33917, 0.28491};
    FitPoint p[64];
    int n = 0;
    Rng r;
    rng_seed(&r, 2);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            double N = 1e6 * pow(1e3, i / 7.0), D = 1e8 * pow(1e3, j / 7.0);
            double L = truth[0] + truth[1] / pow(N, truth[3]) + truth[2] / pow(D, truth[4]);
            p[n++] = (FitPoint){N, D, 6 * N * D, L * exp(0.005 * rng_normal(&r)), 0, -1, 0, 1};
        }
    LawFit f;
    approach3_against(p, n, 300, truth, &f);
    for (int k = 0; k < 5; k++) {
        assert_true(f.p[k].lo <= truth[k] * 1.02 && truth[k] * 0.98 <= f.p[k].hi);
    }
    double a_true = truth[4] / (truth[3] + truth[4]);
    printf("  a = beta/(alpha+beta): truth %.4f, estimate %.4f [%.4f, %.4f]\n", a_true, f.a_exp.value, f.a_exp.lo,
           f.a_exp.hi);
    assert_true(f.a_exp.lo <= a_true && a_true <= f.a_exp.hi);
    law_fit_free(&f);
}

static void test_huber_outliers(void **state) {
    (void)state;
    const double truth[3] = {1.0, 1000.0, 0.2};
    FitPoint p[12];
    Rng r;
    rng_seed(&r, 3);
    law_points(p, 12, truth, 0.002, &r);
    p[3].loss *= 1.5; /* two runs that went wrong */
    p[8].loss *= 0.7;
    LawFit huber, ls;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 0;
    assert_int_equal(fit_frontier(p, 12, &o, &huber, &st), 0);
    o.delta = 1e9; /* plain least squares */
    assert_int_equal(fit_frontier(p, 12, &o, &ls, &st), 0);
    double eh = fabs(huber.p[2].value - truth[2]), el = fabs(ls.p[2].value - truth[2]);
    printf("  alpha with 2 outliers: Huber %.4f, least squares %.4f (truth %.2f)\n", huber.p[2].value, ls.p[2].value,
           truth[2]);
    assert_true(eh < el);
    law_fit_free(&huber);
    law_fit_free(&ls);
}

static void test_coverage(void **state) {
    (void)state;
    const double truth[3] = {2.0, 30.0, 0.15};
    int draws = 100, covered = 0;
    Rng r;
    rng_seed(&r, 4);
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 100;
    for (int d = 0; d < draws; d++) {
        FitPoint p[10];
        law_points(p, 10, truth, 0.01, &r);
        LawFit f;
        Status st = {0};
        o.seed = 100 + (uint64_t)d;
        assert_int_equal(fit_frontier(p, 10, &o, &f, &st), 0);
        covered += f.p[2].lo <= truth[2] && truth[2] <= f.p[2].hi;
        law_fit_free(&f);
    }
    double cov = (double)covered / draws;
    printf("  95%% bootstrap interval of alpha covered the truth in %d of %d draws (%.1f%%)\n", covered, draws,
           100 * cov);
    /* percentile bootstraps run a little narrow with 10 points; a broken interval would be far off */
    assert_true(cov > 0.80 && cov <= 1.0);
}

static void test_ceg_identical_arms(void **state) {
    (void)state;
    const double truth[3] = {1.0, 1000.0, 0.2};
    FitPoint a[10], b[10];
    Rng r;
    rng_seed(&r, 5);
    law_points(a, 10, truth, 0.005, &r);
    law_points(b, 10, truth, 0.005, &r);
    LawFit fa, fb;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    assert_int_equal(fit_frontier(a, 10, &o, &fa, &st), 0);
    o.seed = 43;
    assert_int_equal(fit_frontier(b, 10, &o, &fb, &st), 0);
    CegCurve c;
    assert_int_equal(ceg_compute(&fa, &fb, 5, 0.95, &c), 0);
    for (int k = 0; k < c.n; k++) {
        printf("  loss %.4f: CEG %.3f [%.3f, %.3f]\n", c.lv[k].loss, c.lv[k].ceg, c.lv[k].lo, c.lv[k].hi);
        assert_true(c.lv[k].lo <= 1.0 && 1.0 <= c.lv[k].hi);
    }
    assert_string_not_equal(c.trend, "grows");
    assert_string_not_equal(c.trend, "shrinks");
    /* a planted 4x gain is found */
    FitPoint fast[10];
    const double better[3] = {1.0, 1000.0 * pow(4.0, -0.2), 0.2}; /* reaches each loss with 1/4 of the compute */
    law_points(fast, 10, better, 0.005, &r);
    LawFit ff;
    assert_int_equal(fit_frontier(fast, 10, &o, &ff, &st), 0);
    assert_int_equal(ceg_compute(&fa, &ff, 5, 0.95, &c), 0);
    printf("  planted 4x: CEG %.3f [%.3f, %.3f] at loss %.3f\n", c.lv[2].ceg, c.lv[2].lo, c.lv[2].hi, c.lv[2].loss);
    assert_true(c.lv[2].lo < 4.0 && 4.0 < c.lv[2].hi);
    law_fit_free(&fa);
    law_fit_free(&fb);
    law_fit_free(&ff);
}

/* 5 IsoFLOP budgets (c0 x 10^g) of 7 sizes each, noise-free under the approach-3 law t, the sizes at
 * N* e^(lo_g .. hi) where N* is the law's exact optimum for D = C / (6N) and lo_g = lo + lo_slope g;
 * returns a_true = beta / (alpha + beta). */
static double isoflop_grid(const double *t, double c0, double lo, double lo_slope, double hi, FitPoint *p, int *n) {
    double a_true = t[4] / (t[3] + t[4]), G = pow(t[3] * t[1] / (t[4] * t[2]), 1 / (t[3] + t[4]));
    *n = 0;
    for (int g = 0; g < 5; g++) {
        double C = c0 * pow(10, g), nopt = G * pow(C / 6, a_true), l = lo + lo_slope * g;
        for (int i = 0; i < 7; i++) {
            double N = nopt * exp(l + (hi - l) * i / 6.0), D = C / (6 * N);
            p[(*n)++] = (FitPoint){N, D, C, t[0] + t[1] / pow(N, t[3]) + t[2] / pow(D, t[4]), 0, g, 0, 1};
        }
    }
    return a_true;
}

static void test_approach2(void **state) {
    (void)state;
    const double t[5] = {1.6934, 406.4, 410.7, 0.33917, 0.28491};
    FitPoint p[64];
    int n;
    double a_true = isoflop_grid(t, 1e18, -log(16.0), 0, log(16.0), p, &n); /* N* / 16 .. N* x 16 */
    Approach2Fit f;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 200;
    assert_int_equal(fit_chinchilla_approach2(p, n, &o, &f, &st), 0);
    printf("  approach 2: N* ~ C^%.4f (truth %.4f), D* ~ C^%.4f (truth %.4f)\n", f.a.value, a_true, f.b.value,
           1 - a_true);
    /* parabolas only approximate the profile: a few hundredths */
    assert_true(fabs(f.a.value - a_true) < 0.03);
    assert_true(fabs(f.b.value - (1 - a_true)) < 0.03);
    assert_true(f.identified);
    approach2_free(&f);
}

/* The data-constrained law (Muennighoff et al. 2023, their fitted values, R* = 15.4) planted on
 * 7 sizes x 3 token counts x 6 repetition levels with 0.5% noise: R* comes back inside a stated
 * tolerance with an interval that covers it; without repeated runs, R* is reported unidentified. */
static void test_muennighoff(void **state) {
    (void)state;
    const double E = 1.87, A = 521, B = 1488, al = 0.35, be = 0.353, Rs = 15.4;
    const double ep[] = {1, 2, 4, 8, 16, 32};
    FitPoint p[256];
    int n = 0;
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 6; k++) {
                double N = 1e7 * pow(10, i / 3.0), D = 20 * N * pow(4.0, j - 1);
                double Dp = D * muennighoff_effective_fraction(ep[k], Rs);
                double L = E + A / pow(N, al) + B / pow(Dp, be);
                p[n++] = (FitPoint){N, D, 6 * N * D, L * exp(0.005 * rng_normal(&r)), 0, -1, 0, ep[k]};
            }
    assert_float_equal(muennighoff_effective_fraction(1, Rs), 1, 1e-15);
    assert_float_equal(muennighoff_effective_fraction(4, Rs), (1 + Rs * (1 - exp(-3 / Rs))) / 4, 1e-12);
    LawFit f;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 200;
    assert_int_equal(fit_muennighoff(p, n, &o, &f, &st), 0);
    printf("  muennighoff: R* %.2f [%.2f, %.2f] (truth %.1f), alpha %.3f, beta %.3f; %s\n", f.p[5].value, f.p[5].lo,
           f.p[5].hi, Rs, f.p[3].value, f.p[4].value, f.notes[0] ? f.notes : "all identified");
    assert_true(fabs(log(f.p[5].value / Rs)) < log(1.3));
    assert_true(f.p[5].lo <= Rs && Rs <= f.p[5].hi);
    assert_true(f.p[5].identified);
    law_fit_free(&f);
    /* fresh data only: the law cannot see R* */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (p[i].epochs == 1) p[m++] = p[i];
    assert_int_equal(fit_muennighoff(p, m, &o, &f, &st), 0);
    printf("  muennighoff on fresh data only: R* %.3g [%.3g, %.3g]; %s\n", f.p[5].value, f.p[5].lo, f.p[5].hi, f.notes);
    assert_false(f.p[5].identified);
    law_fit_free(&f);
}

static void test_accounting(void **state) {
    (void)state;
    Status st = {0};
    /* 600x over 7 years: every form gives back the others exactly */
    Rate r = {600, 7, NAN, NAN, NAN};
    assert_int_equal(rate_complete(&r, &st), 0);
    assert_float_equal(r.halving_months, 12 * 7 * log(2) / log(600), 1e-12);
    assert_float_equal(pow(r.annual, 7), 600, 1e-9);
    assert_float_equal(r.oom_per_year * 7, log10(600), 1e-12);
    double forms[4][4] = {{600, NAN, NAN, NAN}, {NAN, r.annual, NAN, NAN}, {NAN, NAN, r.oom_per_year, NAN},
                          {NAN, NAN, NAN, r.halving_months}};
    for (int i = 0; i < 4; i++) {
        Rate q = {forms[i][0], 7, forms[i][1], forms[i][2], forms[i][3]};
        assert_int_equal(rate_complete(&q, &st), 0);
        assert_float_equal(q.factor, 600, 1e-9);
    }
    /* 4x/year for 7 years is 16384x, a 6-month halving */
    Rate q = {NAN, 7, 4, NAN, NAN};
    assert_int_equal(rate_complete(&q, &st), 0);
    assert_float_equal(q.factor, 16384, 1e-8);
    assert_float_equal(q.halving_months, 6, 1e-12);
    /* decomposition: product x residual = total, shares of the log add to 1 */
    Factor f[] = {{"hardware", 6}, {"algorithms", 5}, {"optimisations", 2.5}, {"data", 8}};
    Decomposition d;
    assert_int_equal(decompose(600, f, 4, &d, &st), 0);
    assert_float_equal(d.product * d.residual, 600, 1e-9);
    assert_float_equal(d.residual, 1.0, 1e-12);
    double sum = d.residual_share;
    for (int i = 0; i < 4; i++) sum += d.share[i];
    assert_float_equal(sum, 1.0, 1e-12);
    assert_int_equal(decompose(1000, f, 4, &d, &st), 0);
    assert_float_equal(d.residual, 1000.0 / 600.0, 1e-12);
    /* a world without scale dependence: the fitted halving time is the true one at any mix */
    Simulation sim;
    simulation_default(&sim);
    sim.gain0 = 1, sim.slope = 0;
    Rate truth = {NAN, 1, sim.steady, NAN, NAN};
    rate_complete(&truth, &st);
    for (double share = 0; share <= 1; share += 0.5) {
        sim.frontier_share = share;
        RateFit fit;
        assert_int_equal(simulate_rate(&sim, &fit, &st), 0);
        assert_true(fit.halving_lo <= truth.halving_months && truth.halving_months <= fit.halving_hi);
    }
    /* with a scale-dependent gain, a frontier-heavy sample fits a shorter halving time */
    simulation_default(&sim);
    RateFit small, frontier;
    sim.frontier_share = 0;
    simulate_rate(&sim, &small, &st);
    sim.frontier_share = 1;
    simulate_rate(&sim, &frontier, &st);
    assert_true(frontier.halving_hi < small.halving_lo);
}


/* ---------------------------------------------------------------- planted studies */

/* The planted world: L(N, D) = E + A/N^alpha + B/D^beta in bits per byte, C = 6ND. B makes the
 * compute-optimal allocation at 1e12 FLOPs 20 tokens per parameter; the optimal loss runs from about
 * 4.5 at 1e11 FLOPs to 2.3 at 1e13. The "better" arm sees its N and D as sqrt(2) times larger, so its
 * frontier reaches every loss with exactly half the compute: CEG = 2 at every level. */
static const double W_E = 1.2, W_A = 170, W_B = 1210, W_ALPHA = 0.45, W_BETA = 0.5;

static double world_loss(double N, double D, double k) {
    return W_E + W_A / pow(k * N, W_ALPHA) + W_B / pow(k * D, W_BETA);
}

/* the compute-optimal N of the arm with multiplier k at compute C */
static double world_nopt(double C, double k) {
    double a = W_BETA / (W_ALPHA + W_BETA), G = pow(W_ALPHA * W_A / (W_BETA * W_B), 1 / (W_ALPHA + W_BETA));
    return G * pow(k * k * C / 6, a) / k;
}

typedef struct {
    const char *name;
    int budgets;
    double c_lo, c_hi;  /* budgets log-spaced between */
    int seeds, extra;   /* seeds at every budget, and more at the smallest */
    double noise;       /* sd of one run's ln loss */
    int one_size_ref;   /* the reference trains one size per budget, at its own optimum */
    double rho;         /* correlation of the two arms' runs of one budget, seed and size */
} Design;

/* One synthetic study: a reference arm (0) and the better arm (1); profiled arms train 3 sizes a
 * sqrt(2) apart around the 20-tokens-per-parameter size, each snapped within +-3% (shapes are
 * integers), tokens making up the budget. */
static int study_points(const Design *d, Rng *r, FitPoint *p) {
    int n = 0;
    for (int g = 0; g < d->budgets; g++) {
        double C = d->c_lo * pow(d->c_hi / d->c_lo, (double)g / (d->budgets - 1));
        int seeds = d->seeds + (g == 0 ? d->extra : 0);
        for (int s = 1; s <= seeds; s++) {
            double shared[3] = {rng_normal(r), rng_normal(r), rng_normal(r)};
            for (int arm = 0; arm < 2; arm++) {
                double k = arm ? sqrt(2) : 1;
                int sizes = arm == 0 && d->one_size_ref ? 1 : 3;
                for (int i = 0; i < sizes; i++) {
                    double snap = 1 + 0.06 * (rng_uniform_double(r) - 0.5);
                    double N = sizes == 1 ? world_nopt(C, k) : sqrt(C / 120) * pow(2, (i - 1) / 2.0) * snap;
                    double D = C / (6 * N), z = rng_normal(r);
                    if (d->rho > 0) z = sqrt(d->rho) * shared[i] + sqrt(1 - d->rho) * z;
                    p[n++] = (FitPoint){N, D, 6 * N * D, world_loss(N, D, k) * exp(d->noise * z), arm, g, s, 1};
                }
            }
        }
    }
    return n;
}

typedef struct {
    int studies, levels;
    double cover[CEG_MAX_LEVELS]; /* share of non-extrapolated intervals holding the planted 2 */
    double cover_min, ratio_median, ceg_median, law_share, trend_false, rho_mean, rejected, seconds;
} Coverage;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(const Design *d, int studies, int n_boot, Coverage *c) {
    memset(c, 0, sizeof *c);
    Rng r;
    rng_seed(&r, 2026);
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = n_boot;
    int covered[CEG_MAX_LEVELS] = {0}, counted[CEG_MAX_LEVELS] = {0}, law = 0, trend = 0, rejected = 0;
    double *ratio = malloc((size_t)studies * sizeof *ratio), *mids = malloc((size_t)studies * sizeof *mids), rho = 0;
    FitPoint *p = malloc(4096 * sizeof *p);
    assert_non_null(ratio);
    assert_non_null(p);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < studies; k++) {
        int n = study_points(d, &r, p);
        Frontier f[2];
        Status st = {0};
        o.seed = 1000 + (uint64_t)k;
        assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
        CegCurve cc;
        if (ceg_pair(&f[0], &f[1], 5, &o, &cc, &st)) fail_msg("%s study %d: %s", d->name, k, st.msg);
        c->levels = cc.n;
        for (int l = 0; l < cc.n; l++) {
            if (cc.lv[l].extrapolated) continue;
            counted[l]++;
            covered[l] += cc.lv[l].lo <= 2 && 2 <= cc.lv[l].hi;
        }
        const CegLevel *mid = &cc.lv[cc.n / 2];
        ratio[k] = mid->lo > 0 && isfinite(mid->hi) ? mid->hi / mid->lo : INFINITY;
        mids[k] = mid->ceg;
        law += mid->method == CEG_LAW;
        trend += !strcmp(cc.trend, "grows") || !strcmp(cc.trend, "shrinks");
        rho += cc.rho_used;
        rejected += f[0].n_rejected + f[1].n_rejected;
        frontier_free(&f[0]);
        frontier_free(&f[1]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    qsort(ratio, (size_t)studies, sizeof *ratio, cmp_d);
    qsort(mids, (size_t)studies, sizeof *mids, cmp_d);
    c->ceg_median = mids[studies / 2];
    c->studies = studies;
    c->cover_min = 1;
    for (int l = 0; l < c->levels; l++) {
        c->cover[l] = counted[l] ? (double)covered[l] / counted[l] : NAN;
        if (counted[l]) c->cover_min = fmin(c->cover_min, c->cover[l]);
    }
    c->ratio_median = ratio[studies / 2];
    c->law_share = (double)law / studies;
    c->trend_false = (double)trend / studies;
    c->rho_mean = rho / studies;
    c->rejected = (double)rejected / (2.0 * studies * n_boot);
    c->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("  %-34s nominal 95%%: covered %5.1f%% at the middle level, %5.1f%% at the worst (levels:", d->name,
           100 * c->cover[c->levels / 2], 100 * c->cover_min);
    for (int l = 0; l < c->levels; l++) printf(" %.1f", 100 * c->cover[l]);
    printf(")\n  %-34s median CEG %.3f (planted 2), median hi/lo %.2f; law used in %.0f%%; trend claimed in %.1f%%;\n"
           "  %-34s rho used %.2f; %.1f%% resamples rejected; %d studies x %d resamples in %.2f s\n",
           "", c->ceg_median, c->ratio_median, 100 * c->law_share, 100 * c->trend_false, "", c->rho_mean,
           100 * c->rejected, studies, n_boot, c->seconds);
    free(ratio);
    free(mids);
    free(p);
}

/* 200 studies of 100 resamples each keep the test to a few seconds; FIT_STUDIES and FIT_BOOT raise them
 * (docs/FITTING.md quotes 1000 x 400) */
static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}
#define STUDIES env_int("FIT_STUDIES", 200)
#define BOOT env_int("FIT_BOOT", 100)

static void test_coverage_default(void **state) {
    (void)state;
    Design d = {"default: 6 budgets/2 OOM, 2 seeds, 1.5%", 6, 1e11, 1e13, 2, 0, 0.015, 0, 0};
    Coverage c;
    measure(&d, STUDIES, BOOT, &c);
    assert_true(c.cover[c.levels / 2] >= 0.90);
    assert_true(c.cover_min >= 0.90);
    assert_true(c.ratio_median <= 3);
    assert_true(c.trend_false <= 0.10);
}

static void test_coverage_thin(void **state) {
    (void)state;
    Design d = {"thin: 5 budgets/1.7 OOM, 1(+1) seed, 3%", 5, 1e11, 1e11 * pow(10, 1.7), 1, 1, 0.03, 0, 0};
    Coverage c;
    measure(&d, STUDIES, BOOT, &c);
    assert_true(c.cover[c.levels / 2] >= 0.90);
    assert_true(c.cover_min >= 0.90);
}

static void test_coverage_one_size(void **state) {
    (void)state;
    Design d = {"one size per budget vs profiled", 6, 1e11, 1e13, 2, 0, 0.015, 1, 0};
    Coverage c;
    measure(&d, STUDIES, BOOT, &c);
    /* a profile's minimum (a vertex, or the best of 3 noisy runs) sits below the true optimum by a
     * fraction of the run noise; one size per budget has no such selection, so the profiled arm looks
     * ~6% better than it is at 1.5% noise, which costs coverage: 93% at the middle level and 89% at the
     * lowest over 1000 studies (docs/FITTING.md); 200 studies vary by about 2 points */
    assert_true(c.cover[c.levels / 2] >= 0.85);
    assert_true(c.cover_min >= 0.80);
    assert_true(c.ceg_median > 2.0 && c.ceg_median < 2.25);
}

static void test_coverage_correlated(void **state) {
    (void)state;
    Design d = {"default, seeds correlated 0.6 across arms", 6, 1e11, 1e13, 2, 0, 0.015, 0, 0.6};
    Coverage c;
    measure(&d, (STUDIES + 1) / 2, BOOT, &c); /* the paired path refits every resample: half the studies */
    assert_true(c.cover[c.levels / 2] >= 0.90);
    assert_true(c.cover_min >= 0.90);
    assert_true(c.rho_mean > 0.1);
}


/* ---------------------------------------------------------------- frontier pieces */

static FitPoint run_at(double N, double C, double loss, int arm, int group, int seed) {
    return (FitPoint){N, C / (6 * N), C, loss, arm, group, seed, 1};
}

static void test_frontier_points(void **state) {
    (void)state;
    FitPoint p[32];
    int n = 0;
    /* budget 0: two seeds on exact parabolas in ln N with their vertex at N = 1e5 */
    for (int s = 1; s <= 2; s++)
        for (int i = -1; i <= 1; i++) {
            double x = i * log(2) / 2 + 0.1, N = 1e5 * exp(x);
            p[n++] = run_at(N, 1e12, (s == 1 ? 3.0 : 3.1) + 0.5 * x * x, 0, 0, s);
        }
    /* budget 1: a convex profile whose minimum lies beyond the largest size, one seed */
    for (int i = -1; i <= 1; i++) p[n++] = run_at(1e5 * pow(2, i / 2.0), 1e13, 2.5 - 0.1 * i + 0.02 * i * i, 0, 1, 1);
    /* budget 2: a parabola opening downward */
    for (int i = -1; i <= 1; i++) p[n++] = run_at(1e5 * pow(2, i / 2.0), 1e14, 2.0 - 0.05 * i * i, 0, 2, 1);
    /* budget 3: one size (an allocation rule), no group: grouped by its flops */
    p[n++] = run_at(3e5, 1e15, 1.9, 0, -1, 1);
    Frontier f;
    Status st = {0};
    assert_int_equal(frontier_points(p, n, &f, &st), 0);
    assert_int_equal(f.n, 4);
    const FrontierPoint *q = &f.pt[0];
    assert_int_equal(q->n_seeds, 2);
    assert_int_equal(q->n_interior, 2);
    assert_float_equal(q->n_opt, 1e5, 1e-3 * 1e5);
    assert_float_equal(q->log_loss, 0.5 * (log(3.0) + log(3.1)), 1e-9);
    assert_float_equal(q->flops, 1e12, 1);
    assert_string_equal(q->why, "");
    assert_int_equal(f.pt[1].n_interior, 0);
    assert_float_equal(f.pt[1].loss, 2.42, 1e-12);
    assert_non_null(strstr(f.pt[1].why, "outside the sampled sizes"));
    assert_non_null(strstr(f.pt[2].why, "opens downward"));
    assert_float_equal(f.pt[2].loss, 1.95, 1e-12);
    assert_int_equal(f.pt[3].n_sizes, 1);
    assert_non_null(strstr(f.pt[3].why, "one size per budget"));
    printf("  vertex N* %.6g (planted 1e5); fallbacks: '%s', '%s', '%s'\n", q->n_opt, f.pt[1].why, f.pt[2].why,
           f.pt[3].why);
    frontier_free(&f);
    /* bad input is an error, not a crash */
    p[0].loss = -1;
    assert_int_equal(frontier_points(p, n, &f, &st), -1);
    printf("  bad point: %s\n", st.msg);
}

/* Runs of one arm of the planted world at budgets 1e11..1e13 on the sqrt(2) ladder. */
static int world_runs(FitPoint *p, int arm, double k, int budgets, int seeds, double noise, Rng *r) {
    int n = 0;
    for (int g = 0; g < budgets; g++) {
        double C = 1e11 * pow(100, (double)g / (budgets - 1));
        for (int s = 1; s <= (seeds ? seeds : 1); s++) /* seeds 0: one unlabelled seed */
            for (int i = 0; i < 3; i++) {
                double N = sqrt(C / 120) * pow(2, (i - 1) / 2.0), D = C / (6 * N);
                p[n++] = (FitPoint){N, D, C, world_loss(N, D, k) * exp(noise * rng_normal(r)), arm, g, seeds ? s : 0, 1};
            }
    }
    return n;
}

static void test_frontier_recovery_world(void **state) {
    (void)state;
    /* the compute-optimal frontier of L(N, D) is exactly E + K C^-gamma, gamma = alpha beta / (alpha + beta),
     * and N* ~ C^(beta / (alpha + beta)) */
    double gamma = W_ALPHA * W_BETA / (W_ALPHA + W_BETA), a_true = W_BETA / (W_ALPHA + W_BETA);
    FitPoint p[512];
    Rng r;
    rng_seed(&r, 11);
    int n = world_runs(p, 0, 1, 10, 3, 0.002, &r);
    Frontier f;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 400;
    assert_int_equal(frontier_fit_arms(p, n, 1, &o, &f, &st), 0);
    printf("  E %.4f [%.4f, %.4f] (planted %.2f), alpha %.4f [%.4f, %.4f] (planted %.4f)\n", f.law.p[0].value,
           f.law.p[0].lo, f.law.p[0].hi, W_E, f.law.p[2].value, f.law.p[2].lo, f.law.p[2].hi, gamma);
    printf("  N* ~ C^%.3f [%.3f, %.3f] (planted %.3f) from %d vertices; noise %.4f (%d dof), lack of fit x%.2f\n",
           f.a_exp.value, f.a_exp.lo, f.a_exp.hi, a_true, f.n_vertices, f.sigma0, f.dof, f.lof);
    assert_true(f.law.identified);
    assert_true(f.from_replicates);
    assert_int_equal(f.dof, 10 * 2);
    assert_true(f.law.p[0].lo <= W_E && W_E <= f.law.p[0].hi);
    assert_true(f.law.p[2].lo <= gamma && gamma <= f.law.p[2].hi);
    assert_true(fabs(f.law.p[2].value / gamma - 1) < 0.1);
    assert_true(f.a_exp.lo <= a_true && a_true <= f.a_exp.hi);
    assert_true(f.a_exp.identified);
    frontier_free(&f);
}

static void test_noise_sources(void **state) {
    (void)state;
    FitPoint p[512];
    Rng r;
    rng_seed(&r, 12);
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 100;
    Status st = {0};
    /* no seeds anywhere: the noise comes from the laws' residuals, n - 3 dof per arm */
    int n = world_runs(p, 0, 1, 6, 0, 0.01, &r);
    n += world_runs(p + n, 1, sqrt(2), 6, 0, 0.01, &r);
    Frontier f[2];
    assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
    printf("  without replicates: sigma %.4f with %d dof; '%s'\n", f[0].sigma0, f[0].dof, f[0].notes);
    assert_false(f[0].from_replicates);
    assert_int_equal(f[0].dof, 2 * (6 - 3));
    assert_non_null(strstr(f[0].notes, "residuals"));
    assert_true(isnan(f[0].sigma_seed));
    frontier_free(&f[0]);
    frontier_free(&f[1]);
    /* replicates say the noise is 0.2%, but the losses bend away from any L(C) = E + A C^-alpha by far more:
     * the noise is inflated by the reduced chi-square, and said */
    n = world_runs(p, 0, 1, 8, 2, 0.002, &r);
    for (int i = 0; i < n; i++) p[i].loss *= exp(0.04 * sin(3 * log(p[i].flops / 1e11)));
    assert_int_equal(frontier_fit_arms(p, n, 1, &o, f, &st), 0);
    printf("  lack of fit: chi2_red %.1f, noise %.4f -> %.4f; '%s'\n", f[0].chi2_red, f[0].sigma0, f[0].sigma, f[0].notes);
    assert_true(f[0].from_replicates);
    assert_true(f[0].lof > 4);
    assert_float_equal(f[0].sigma, f[0].sigma0 * sqrt(f[0].lof), 1e-12);
    assert_non_null(strstr(f[0].notes, "lack of fit"));
    frontier_free(&f[0]);
    /* losses that do not fall with compute: no law is identified, and the rejected resamples are counted */
    n = 0;
    for (int g = 0; g < 6; g++)
        for (int s = 1; s <= 2; s++)
            p[n] = run_at(1e5, 1e11 * pow(10, g / 2.5), 3 * exp(0.01 * rng_normal(&r)), 0, g, s), n++;
    assert_int_equal(frontier_fit_arms(p, n, 1, &o, f, &st), 0);
    printf("  flat losses: %d of %d resamples rejected; '%s'\n", f[0].n_rejected, f[0].n_boot, f[0].law.notes);
    assert_false(f[0].law.identified);
    frontier_free(&f[0]);
}

static void test_local_and_quantiles(void **state) {
    (void)state;
    /* the third point is above the second: pooled with it into one point at their mean */
    const double x[4] = {0, 1, 2, 3}, y[4] = {1.0, 0.8, 0.85, 0.5};
    double lo, hi;
    assert_float_equal(frontier_local_log_compute(x, y, NULL, 4, 0.9, &lo, &hi), 0.1 / 0.175 * 1.5, 1e-12);
    assert_float_equal(lo, 0.5, 1e-12);
    assert_float_equal(hi, 1.0, 1e-12);
    assert_float_equal(frontier_local_log_compute(x, y, NULL, 4, 0.6, NULL, NULL), 1.5 + 1.5 * 0.225 / 0.325, 1e-12);
    assert_true(isinf(frontier_local_log_compute(x, y, NULL, 4, 1.1, NULL, NULL)) &&
                frontier_local_log_compute(x, y, NULL, 4, 1.1, NULL, NULL) < 0);
    assert_true(isinf(frontier_local_log_compute(x, y, NULL, 4, 0.4, NULL, NULL)) &&
                frontier_local_log_compute(x, y, NULL, 4, 0.4, NULL, NULL) > 0);
    /* Student t: the tables' 97.5% points */
    const int dof[] = {1, 2, 5, 10, 30, 1000};
    const double t975[] = {12.7062, 4.3027, 2.5706, 2.2281, 2.0423, 1.9623};
    for (int i = 0; i < 6; i++) assert_float_equal(fit_t_quantile(0.975, dof[i]), t975[i], 1e-3);
    assert_float_equal(fit_t_quantile(0.025, 3), -3.1824, 1e-3);
}

static void test_points_seed_column(void **state) {
    (void)state;
    char path[] = "/tmp/test_fit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *csv = "arm,params,tokens,loss,seed\na,1e5,2e6,3.1,1\na,1e5,2e6,3.2,2\nb,1e5,2e6,3.0,\n";
    assert_int_equal(write(fd, csv, strlen(csv)), (long)strlen(csv));
    close(fd);
    PointSet ps;
    Status st = {0};
    assert_int_equal(points_read_csv(&ps, path, &st), 0);
    assert_int_equal(ps.n, 3);
    assert_int_equal(ps.p[0].seed, 1);
    assert_int_equal(ps.p[1].seed, 2);
    assert_int_equal(ps.p[2].seed, 0);
    assert_int_equal(ps.p[0].group, ps.p[1].group);
    points_free(&ps);
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *bad = "arm,params,tokens,loss,seed\na,1e5,2e6,3.1,x\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (long)strlen(bad));
    close(fd);
    assert_int_equal(points_read_csv(&ps, path, &st), -1);
    printf("  %s\n", st.msg);
    unlink(path);
}

/* Writes text to a fresh temporary file; its path in path (a "/tmp/test_fit_XXXXXX" buffer). */
static void write_temp(char *path, const char *text) {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (long)strlen(text));
    close(fd);
}

/* Bad rows name the file, the line, the column (number and name) and the value. */
static void test_points_errors(void **state) {
    (void)state;
    static const struct {
        const char *csv, *expect;
    } cases[] = {
        {"arm,N,D,loss\na,1e5,2e6,3.1\na,1e5,2e6,abc\n", ":3: column 4 'loss': 'abc' is not a positive number"},
        {"arm,params,tokens,loss\na,1e5,2e6,3.1\n\na,-1,2e6,3\n", ":4: column 2 'params': '-1' is not a positive"},
        {"params,tokens,loss,seed\n1e5,2e6,3.1,1.5\n", ":2: column 4 'seed': '1.5' is not a whole number"},
        {"params,tokens,loss,budget\n1e5,2e6,3.1,lots\n", ":2: column 4 'budget': 'lots' is not a number"},
        {"arm,params,tokens,loss\na,1e5,2e6\n", ":2: 3 fields where the header has 4 (column 'loss' missing)"},
        {"arm,params,tokens\na,1e5,2e6\n", "no loss column"},
        {"arm,loss\na,3\n", "need a flops column, or params and tokens"},
        {"arm,params,tokens,loss\n\"a,1e5,2e6,3\n", ":2: malformed CSV"},
        {"arm,params,tokens,loss\n", "no data rows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[] = "/tmp/test_fit_XXXXXX";
        write_temp(path, cases[i].csv);
        PointSet ps;
        Status st = {0};
        assert_int_equal(points_read_csv(&ps, path, &st), -1);
        printf("  %s\n", st.msg);
        assert_non_null(strstr(st.msg, cases[i].expect));
        unlink(path);
    }
}

/* A published file's own column names, mapped with --col NAME=HEADER (Epoch's extraction of
 * Chinchilla's points names them "Model Size" and "Training FLOP"). */
static void test_points_rename(void **state) {
    (void)state;
    char path[] = "/tmp/test_fit_XXXXXX";
    write_temp(path, "x,Model Size,Training FLOP,loss,val_bpb\n1,1e8,6e18,3.1,9\n2,2e8,6e18,3.0,9\n");
    PointSet ps;
    Status st = {0};
    const char *map[] = {"params=Model Size", "flops=Training FLOP", NULL};
    assert_int_equal(points_read_csv_axis(&ps, path, COST_FLOPS, map, &st), 0);
    assert_int_equal(ps.n, 2);
    assert_float_equal(ps.p[1].params, 2e8, 1);
    assert_float_equal(ps.p[1].tokens, 6e18 / (6 * 2e8), 1);
    assert_float_equal(ps.p[0].loss, 3.1, 1e-12); /* loss before val_bpb */
    points_free(&ps);
    const char *bpb[] = {"val_bpb=val_bpb", "params=Model Size", "flops=Training FLOP", NULL};
    assert_int_equal(points_read_csv_axis(&ps, path, COST_FLOPS, bpb, &st), 0);
    assert_float_equal(ps.p[0].loss, 9, 1e-12); /* the user's choice wins */
    points_free(&ps);
    const char *bad[][2] = {{"size=Model Size", NULL}, {"params=Size", NULL}, {"params", NULL}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(points_read_csv_axis(&ps, path, COST_FLOPS, bad[i], &st), -1);
        printf("  %s\n", st.msg);
        assert_non_null(strstr(st.msg, "--col"));
    }
    unlink(path);
}

/* Any number of points, arms and budgets: 10,000 points in 100 arms, each run with its own budget
 * column (2,500 budgets of 4 sizes), read, fitted
 * by approach 3 (all at once) and as frontiers (every arm). */
static void test_points_large(void **state) {
    (void)state;
    const double t[5] = {1.82, 482.01, 2085.43, 0.3478, 0.3658};
    size_t cap = 10000 * 80 + 64, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    len += (size_t)snprintf(csv, cap, "model,arm,N,D,loss,seed,budget\n");
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < 10000; i++) {
        int arm = i % 100, b = (i / 100) % 25, size = i / 2500;
        double C = 1e15 * pow(1e4, (b + 0.01 * arm) / 24.0), N = sqrt(C / 120) * pow(4.0, (size - 1.5) / 1.5);
        double D = C / (6 * N), L = (t[0] + t[1] / pow(N, t[3]) + t[2] / pow(D, t[4])) * exp(0.01 * rng_normal(&r));
        /* every point its own budget, as in published scaling data */
        len += (size_t)snprintf(csv + len, cap - len, "m%d,arm%d,%.6g,%.6g,%.6g,1,%.10g\n", i, arm, N, D, L, 6 * N * D);
    }
    char path[] = "/tmp/test_fit_XXXXXX";
    write_temp(path, csv);
    free(csv);
    PointSet ps;
    Status st = {0};
    assert_int_equal(points_read_csv(&ps, path, &st), 0);
    unlink(path);
    assert_int_equal(ps.n, 10000);
    assert_int_equal(ps.n_arms, 100);
    printf("  %d points, %d arms, %d budget groups\n", ps.n, ps.n_arms, ps.n_groups);
    assert_int_equal(ps.n_groups, 2500); /* 4 sizes share each budget */
    LawFit f;
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 8;
    for (int i = 0; i < ps.n; i++) ps.p[i].arm = 0;
    assert_int_equal(fit_chinchilla_approach3(ps.p, ps.n, &o, &f, &st), 0);
    printf("  approach 3 on all: alpha %.4f (truth %.4f), beta %.4f (truth %.4f)\n", f.p[3].value, t[3], f.p[4].value,
           t[4]);
    assert_true(fabs(f.p[3].value - t[3]) < 0.02 && fabs(f.p[4].value - t[4]) < 0.02);
    law_fit_free(&f);
    for (int i = 0; i < ps.n; i++) ps.p[i].arm = i % 100;
    Frontier *fr = calloc(100, sizeof *fr);
    assert_int_equal(frontier_fit_arms(ps.p, ps.n, 100, &o, fr, &st), 0);
    assert_int_equal(fr[7].n, 25); /* one frontier point per budget of the arm */
    for (int a = 0; a < 100; a++) frontier_free(&fr[a]);
    free(fr);
    points_free(&ps);
}

/* Approach 3 the way Besiroglu et al. (2024) refit Chinchilla: Huber (delta 1e-3) on log loss, L-BFGS
 * from a grid of starts, a bootstrap over points. On a planted law with their estimates and a
 * Chinchilla-shaped design (hundreds of runs, 9 IsoFLOP budgets, sizes 40M-16B, 2.5% noise) every
 * parameter comes back within a stated tolerance and inside its interval. */
static void test_approach3_published_design(void **state) {
    (void)state;
    const double t[5] = {1.8172, 482.01, 2085.43, 0.3478, 0.3658};
    FitPoint *p = malloc(400 * sizeof *p);
    Rng r;
    rng_seed(&r, 245);
    int n = 0;
    for (int g = 0; g < 9; g++) { /* 6e18 .. 3e21 FLOPs */
        double C = 6e18 * pow(500.0, g / 8.0);
        for (int i = 0; i < 30; i++) {
            double N = 4e7 * pow(400.0, i / 29.0), D = C / (6 * N);
            if (D < 2e8 || D > 1e12) continue; /* the design's diagonal band */
            double L = (t[0] + t[1] / pow(N, t[3]) + t[2] / pow(D, t[4])) * exp(0.025 * rng_normal(&r));
            p[n++] = (FitPoint){N, D, C * exp(0.05 * rng_normal(&r)), L, 0, -1, 0, 1};
        }
    }
    printf("  %d points\n", n);
    assert_true(n >= 200);
    LawFit f;
    approach3_against(p, n, 200, t, &f);
    const double tol[] = {0.05, 1.0, 1.0, 0.1, 0.1}; /* relative: A and B trade off with alpha and beta */
    for (int k = 0; k < 5; k++) {
        assert_true(fabs(log(f.p[k].value / t[k])) < log1p(tol[k]));
        assert_true(f.p[k].lo <= t[k] && t[k] <= f.p[k].hi);
    }
    law_fit_free(&f);
    free(p);
}

/* Approach 2's bias: on a grid lopsided around the optimum, parabolas in ln N move the vertices and
 * the exponent; approach2_design_bias measures it from a law, and a - bias recovers the truth. */
static void test_approach2_bias(void **state) {
    (void)state;
    const double t[5] = {1.8172, 482.01, 2085.43, 0.3478, 0.3658};
    FitPoint p[64];
    int n;
    /* from N* / 2 (N* / 15 at the largest budget) up to N* x 100: a grid whose lopsidedness changes with
     * the budget, as when sizes are fixed while the optimum moves (a fixed lopsidedness moves only the
     * intercept) */
    double a_true = isoflop_grid(t, 1e19, log(0.5), -0.5, log(100.0), p, &n);
    Approach2Fit f;
    Status st = {0};
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 50;
    assert_int_equal(fit_chinchilla_approach2(p, n, &o, &f, &st), 0);
    LawFit law = {.law = FIT_APPROACH3, .n_params = 5};
    for (int k = 0; k < 5; k++) law.p[k].value = t[k];
    assert_int_equal(approach2_design_bias(p, n, &law, &f, &st), 0);
    printf("  lopsided grid: approach 2 a = %.4f, truth %.4f, design bias %+.4f, corrected %.4f\n", f.a.value, a_true,
           f.bias, f.a.value - f.bias);
    assert_true(fabs(f.a.value - a_true) > 0.01);         /* the bias is real on this grid */
    assert_true(fabs(f.a.value - f.bias - a_true) < 1e-6); /* and exactly what the law predicts */
    approach2_free(&f);
    /* the same with noise, the law fitted by approach 3: the correction moves a towards the truth */
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < n; i++) p[i].loss *= exp(0.002 * rng_normal(&r));
    LawFit f3;
    assert_int_equal(fit_chinchilla_approach2(p, n, &o, &f, &st), 0);
    assert_int_equal(fit_chinchilla_approach3(p, n, &o, &f3, &st), 0);
    assert_int_equal(approach2_design_bias(p, n, &f3, &f, &st), 0);
    printf("  with 0.2%% noise: approach 2 a = %.4f, corrected %.4f, approach 3 a = %.4f (truth %.4f)\n", f.a.value,
           f.a.value - f.bias, f3.a_exp.value, a_true);
    assert_true(fabs(f.a.value - f.bias - a_true) < fabs(f.a.value - a_true));
    law_fit_free(&f3);
    approach2_free(&f);
}

/* Validated extrapolation on planted studies: each arm's law, fitted without its largest budget,
 * predicts it inside the 95% prediction interval about 95% of the time. */
static void test_holdout_coverage(void **state) {
    (void)state;
    Design d = {"holdout", 7, 1e11, 1e13, 2, 0, 0.015, 0, 0};
    Rng r;
    rng_seed(&r, 77);
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = BOOT;
    FitPoint *p = malloc(4096 * sizeof *p);
    int inside = 0, total = 0, studies = STUDIES / 2;
    double abs_err = 0;
    for (int k = 0; k < studies; k++) {
        int n = study_points(&d, &r, p);
        Frontier f[2];
        Holdout h[2];
        Status st = {0};
        o.seed = 500 + (uint64_t)k;
        assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
        assert_int_equal(frontier_holdout(p, n, 2, 1, f, &o, h, &st), 0);
        for (int a = 0; a < 2; a++) {
            assert_int_equal(h[a].k, 1);
            inside += h[a].n_inside, total++;
            abs_err += fabs(h[a].error[0]);
        }
        frontier_free(&f[0]);
        frontier_free(&f[1]);
    }
    printf("  held-out largest budget inside its 95%% prediction interval: %d of %d (%.1f%%); mean |error| %.2f%%\n",
           inside, total, 100.0 * inside / total, 100 * abs_err / total);
    assert_true(inside >= 0.90 * total && inside <= 0.995 * total);
    /* a law that misses: the largest budget 10% worse than the trend is caught */
    int n = study_points(&d, &r, p), caught = 0;
    for (int i = 0; i < n; i++)
        if (p[i].group == d.budgets - 1) p[i].loss *= 1.10;
    Frontier f[2];
    Holdout h[2];
    Status st = {0};
    assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
    assert_int_equal(frontier_holdout(p, n, 2, 1, f, &o, h, &st), 0);
    for (int a = 0; a < 2; a++) caught += h[a].k == 1 && !h[a].inside[0] && h[a].error[0] > 0.05;
    assert_int_equal(caught, 2);
    /* too few budgets: said */
    assert_int_equal(frontier_holdout(p, n, 2, 5, f, &o, h, &st), 0);
    assert_int_equal(h[0].k, 0);
    printf("  %s\n", h[0].why);
    frontier_free(&f[0]);
    frontier_free(&f[1]);
    free(p);
}

/* Composing measured gains: exact products and rates with zero-width intervals; Monte Carlo
 * intervals equal to the analytic ones for log-normal gains; extrapolation along a planted trend;
 * an unbounded side stays open. */
static void test_account_compose(void **state) {
    (void)state;
    ComposeGain g[3] = {
        {"a", 2020, 2.0, 2.0, 2.0, 1e12, NAN, NAN, NAN},
        {"b", 2022, 3.0, 3.0, 3.0, 1e12, NAN, NAN, NAN},
        {"c", 2030, 5.0, 5.0, 5.0, 1e12, NAN, NAN, NAN}, /* outside the period */
    };
    ComposeOptions o = {2020, 2023, NAN, 20000, 7};
    ComposeResult r;
    Status st = {0};
    assert_int_equal(account_compose(g, 3, &o, &r, &st), 0);
    assert_int_equal(r.used, 2);
    assert_float_equal(r.total[0], 6.0, 1e-12);
    assert_float_equal(r.total[1], 6.0, 1e-9);
    assert_float_equal(r.annual[0], pow(6.0, 1 / 3.0), 1e-12);
    assert_float_equal(r.halving[0], 12 * 3 * log(2) / log(6), 1e-9);
    assert_true(isnan(r.total_x[0]));
    /* log-normal gains: the composed interval is exp(sum ln g +- 1.96 sqrt(sum sd^2)) */
    double sa = 0.2, sb = 0.3;
    g[0].lo = 2 * exp(-1.96 * sa), g[0].hi = 2 * exp(1.96 * sa);
    g[1].lo = 3 * exp(-1.96 * sb), g[1].hi = 3 * exp(1.96 * sb);
    assert_int_equal(account_compose(g, 3, &o, &r, &st), 0);
    double s = sqrt(sa * sa + sb * sb), lo = 6 * exp(-1.96 * s), hi = 6 * exp(1.96 * s);
    printf("  composed 2x and 3x: %.3f [%.3f, %.3f], analytic [%.3f, %.3f]\n", r.total[0], r.total[1], r.total[2], lo,
           hi);
    assert_true(fabs(log(r.total[1] / lo)) < 0.03 && fabs(log(r.total[2] / hi)) < 0.03);
    assert_true(r.halving[1] < r.halving[0] && r.halving[0] < r.halving[2]);
    /* a planted trend: gain(C) = gain x (C / C0)^slope, no slope uncertainty */
    g[0].slope = g[0].slope_lo = g[0].slope_hi = 0.25;
    o.scale_up = 64;
    assert_int_equal(account_compose(g, 3, &o, &r, &st), 0);
    assert_float_equal(r.total_x[0], 6 * pow(64, 0.25), 1e-9);
    /* an unbounded side */
    g[1].lo = 0;
    assert_int_equal(account_compose(g, 3, &o, &r, &st), 0);
    assert_true(r.total[1] == 0 && isinf(r.halving[2]) && isfinite(r.total[2]));
    assert_non_null(strstr(r.unbounded, "b (below)"));
    /* bad periods and gains are errors */
    o.year1 = 2019;
    assert_int_equal(account_compose(g, 3, &o, &r, &st), -1);
    o.year1 = 2023, g[0].gain = NAN;
    assert_int_equal(account_compose(g, 3, &o, &r, &st), -1);
    printf("  %s\n", st.msg);
}

/* One-size arms straight from two frontier laws, 2 seeds, 1% noise. */
static int law_arms(FitPoint *p, const double *la, const double *lb, int budgets, Rng *r) {
    int n = 0;
    for (int g = 0; g < budgets; g++) {
        double C = 1e11 * pow(100, (double)g / (budgets - 1));
        for (int s = 1; s <= 2; s++) {
            p[n++] = run_at(sqrt(C / 120), C, frontier_loss(la, C) * exp(0.01 * rng_normal(r)), 0, g, s);
            p[n++] = run_at(sqrt(C / 120), C, frontier_loss(lb, C) * exp(0.01 * rng_normal(r)), 1, g, s);
        }
    }
    return n;
}

static void test_ceg_pair_cases(void **state) {
    (void)state;
    FitPoint p[256];
    Rng r;
    rng_seed(&r, 13);
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 300;
    Status st = {0};
    Frontier f[2];
    CegCurve c;
    /* a gain that grows with scale: B's exponent is steeper, from a 1.3x gain at 1e11 FLOPs */
    const double la[3] = {1.2, 300, 0.16}, lb[3] = {1.2, 300 * pow(1.3, -0.16) * pow(1e11, 0.24 - 0.16), 0.24};
    int n = law_arms(p, la, lb, 8, &r);
    assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
    assert_int_equal(ceg_pair(&f[0], &f[1], 5, &o, &c, &st), 0);
    for (int k = 0; k < c.n; k++) {
        double truth = frontier_compute(la, c.lv[k].loss) / frontier_compute(lb, c.lv[k].loss);
        printf("  growing gain: loss %.3f CEG %.3g [%.3g, %.3g] (planted %.3g) %s\n", c.lv[k].loss, c.lv[k].ceg,
               c.lv[k].lo, c.lv[k].hi, truth, ceg_method_name(c.lv[k].method));
    }
    printf("  slope %.3f [%.3f, %.3f]: %s\n", c.slope, c.slope_lo, c.slope_hi, c.trend);
    assert_string_equal(c.trend, "grows");
    frontier_free(&f[0]);
    frontier_free(&f[1]);
    /* three budgets each: no law is identified, the CEG is local and not determined */
    const double lc[3] = {1.2, 300 * pow(2.0, -0.2), 0.2}, ld[3] = {1.2, 300, 0.2};
    n = law_arms(p, ld, lc, 3, &r);
    assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
    assert_int_equal(ceg_pair(&f[0], &f[1], 3, &o, &c, &st), 0);
    printf("  3 budgets: CEG %.3g [%.3g, %.3g] (planted 2) %s, trend %s, determined %d\n", c.lv[1].ceg, c.lv[1].lo,
           c.lv[1].hi, ceg_method_name(c.lv[1].method), c.trend, c.determined);
    assert_int_equal(c.lv[1].method, CEG_LOCAL);
    assert_false(c.determined);
    assert_string_equal(c.trend, "undecided");
    assert_true(c.lv[1].lo <= 2 && 2 <= c.lv[1].hi);
    frontier_free(&f[0]);
    frontier_free(&f[1]);
    /* losses that never meet, and laws that are not identified: no CEG without extrapolation */
    const double le[3] = {1.2, 300 * pow(1000.0, -0.2), 0.2};
    n = law_arms(p, ld, le, 3, &r);
    assert_int_equal(frontier_fit_arms(p, n, 2, &o, f, &st), 0);
    assert_int_equal(ceg_pair(&f[0], &f[1], 5, &o, &c, &st), -1);
    printf("  no shared range: %s\n", st.msg);
    frontier_free(&f[0]);
    frontier_free(&f[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frontier_recovery), cmocka_unit_test(test_approach3_recovery),
        cmocka_unit_test(test_huber_outliers),    cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_ceg_identical_arms), cmocka_unit_test(test_approach2), cmocka_unit_test(test_muennighoff),
        cmocka_unit_test(test_accounting),        cmocka_unit_test(test_coverage_default),
        cmocka_unit_test(test_coverage_thin),     cmocka_unit_test(test_coverage_one_size),
        cmocka_unit_test(test_coverage_correlated), cmocka_unit_test(test_frontier_points),
        cmocka_unit_test(test_frontier_recovery_world), cmocka_unit_test(test_noise_sources),
        cmocka_unit_test(test_local_and_quantiles), cmocka_unit_test(test_points_seed_column),
        cmocka_unit_test(test_ceg_pair_cases),    cmocka_unit_test(test_points_errors),
        cmocka_unit_test(test_points_large),      cmocka_unit_test(test_approach3_published_design),
        cmocka_unit_test(test_approach2_bias),    cmocka_unit_test(test_holdout_coverage),
        cmocka_unit_test(test_account_compose),   cmocka_unit_test(test_points_rename),
    };
    if (getenv("FIT_TEST")) cmocka_set_test_filter(getenv("FIT_TEST")); /* e.g. FIT_TEST='test_coverage*' */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
