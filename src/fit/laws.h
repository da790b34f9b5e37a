/* laws.h - scaling-law fits with bootstrap confidence intervals.
 *
 * Three laws, fitted the way the literature fits them:
 *   frontier    L(C) = E + A C^-alpha through the points given, with a bootstrap over points (an
 *               arm's frontier from its IsoFLOP profiles, with calibrated intervals: fit/frontier.h)
 *   approach 2  Chinchilla's IsoFLOP profiles: per budget a parabola of L in log N, its minimum
 *               N*(C); then N* ~ C^a and D* ~ C^b by least squares in log-log
 *   approach 3  L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022; Besiroglu et al. 2024)
 * Frontier and approach 3 minimise the Huber loss (delta = 1e-3) of log-loss residuals, with the
 * model written as a log-sum-exp (log L = LSE(log A - alpha log C, e), E = exp(e)), by L-BFGS from
 * a grid of starting points, keeping the best. Confidence intervals: percentile bootstrap over
 * points (resampled with replacement, each refitted from the best fit), 95% by default.
 * A fit says when the data do not identify a parameter (too few points, a parameter at a bound,
 * a bootstrap interval spanning orders of magnitude) instead of printing a confident number. */
#ifndef AP_LAWS_H
#define AP_LAWS_H

#include "core/status.h"

#include <stdint.h>

typedef struct {
    double params, tokens, flops, loss;
    int arm;   /* index into the caller's arm names */
    int group; /* budget group (-1: none; frontier.c then groups by flops rounded to 2 digits) */
    int seed;  /* training seed (0: unknown, taken as one seed) */
    double epochs; /* times the run saw its unique tokens (U = tokens / epochs); <= 1: fresh data */
} FitPoint;

typedef struct {
    double value, lo, hi; /* estimate and percentile interval */
    int identified;
} FitParam;

#define FIT_MAX_PARAMS 6

typedef struct {
    int law;           /* FIT_FRONTIER, FIT_APPROACH3 */
    int n_points;
    int n_params;
    FitParam p[FIT_MAX_PARAMS]; /* frontier: E, A, alpha; approach 3: E, A, B, alpha, beta; Muennighoff: then R* */
    double objective;  /* Huber objective at the optimum */
    double rmse_log;   /* root mean square of log-loss residuals */
    int identified;    /* all parameters identified */
    int enough;        /* more distinct budgets (or (N, D) settings) than parameters */
    char notes[512];   /* what could not be determined, and why */
    double *boot;      /* n_boot x n_params bootstrap estimates (NaN rows: failed resamples) */
    int n_boot;
    double loss_min, loss_max, x_min, x_max; /* observed ranges (x = compute, or params) */
    /* approach 3 derived: N_opt ~ C^a, D_opt ~ C^b with a = beta/(alpha+beta) */
    FitParam a_exp, b_exp;
} LawFit;

enum { FIT_FRONTIER = 0, FIT_APPROACH3 = 1, FIT_MUENNIGHOFF = 2 };

typedef struct {
    int n_boot;      /* resamples, default 1000 */
    uint64_t seed;   /* default 42 */
    double level;    /* interval level, default 0.95 */
    double delta;    /* Huber delta, default 1e-3 */
} FitOptions;

void fit_options_default(FitOptions *o);
/* L(C) = E + A C^-alpha on the points (flops, loss). */
int fit_frontier(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st);
/* L(N, D) = E + A/N^alpha + B/D^beta on the points (params, tokens, loss). */
int fit_chinchilla_approach3(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st);
/* The data-constrained law of Muennighoff et al. 2023 on the points (params, tokens, epochs, loss):
 * approach 3 with D replaced by the effective data D' = U + U R* (1 - exp(-R / R*)), U = D / epochs
 * unique tokens seen R = epochs - 1 more times; R* (the sixth parameter) is how many repetitions
 * data is worth before it decays to nothing new. Fitted like approach 3 (Huber on log loss, L-BFGS
 * from a grid that includes R*, bootstrap over points). */
int fit_muennighoff(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st);
/* D' / D: what `epochs` passes over U unique tokens are worth as a fraction of as many fresh ones. */
double muennighoff_effective_fraction(double epochs, double rstar);
/* D' / D at `epochs` under a Muennighoff fit: [estimate, lo, hi] over its bootstrap at `level`. */
void muennighoff_fraction(const LawFit *f, double epochs, double level, double out[3]);
void law_fit_free(LawFit *f);
/* Predicted loss of a frontier at compute C, and the compute at which it reaches loss L
 * (INFINITY when L <= E), for parameters (E, A, alpha). */
double frontier_loss(const double *p, double C);
double frontier_compute(const double *p, double L);

/* The frontier law on weighted log points (x = ln C, y = ln L, w = weight, NULL: 1), minimising
 * sum huber(sqrt(w) r, delta) of the log residuals r. t holds the internal parameters
 * (ln A, alpha, ln E): the start on entry when grid = 0, else a grid of starts is tried; the
 * optimum on return. Returns the objective (INFINITY when no start converged). */
double law_fit_logs(const double *x, const double *y, const double *w, int n, double delta, int grid, double t[3]);
/* Least-squares parabola y = c0 + c1 x + c2 x^2; 0 on success. */
int fit_parabola(const double *x, const double *y, int n, double c[3]);
/* Percentile interval at `level` of column k of an (n x stride) sample matrix, NaN entries skipped. */
void fit_interval(const double *samples, int n, int stride, int k, double level, double *lo, double *hi);
/* (ln A, alpha, ln E) -> (E, A, alpha), the order frontier_loss takes. */
void law_public(const double t[3], double p[3]);
/* ln L of the law with internal parameters t at x = ln C. */
double law_log_loss(const double t[3], double x);

typedef struct {
    int n_groups;
    struct {
        double budget;       /* mean FLOPs of the group */
        int n;               /* points */
        double c0, c1, c2;   /* L = c0 + c1 x + c2 x^2, x = ln N */
        double n_opt, l_opt; /* the parabola's minimum */
        int ok;              /* a minimum inside the sampled range */
        double grid_lo, grid_hi; /* the smallest and largest N sampled */
        char why[96];
    } *g;            /* n_groups of them (allocated; approach2_free) */
    FitParam a, b;   /* N* ~ C^a, D* ~ C^b (b = 1 - a when D = C / (k N)) */
    FitParam log_k;  /* N* = exp(log_k) C^a */
    int identified;
    char notes[512];
    /* approach 2's design bias (approach2_design_bias): the exponent a that approach 2 recovers from
     * an approach-3 law's noise-free losses on these very points, minus the law's own a; NaN: unknown */
    double bias, a_law;
} Approach2Fit;

/* Groups: pts[i].group (budgets); needs >= 3 points in >= 2 groups. */
int fit_chinchilla_approach2(const FitPoint *pts, int n, const FitOptions *o, Approach2Fit *out, Status *st);
/* A parabola in ln N is not the IsoFLOP profile E + A/N^alpha + B/D^beta: its vertex moves with where the
 * grid of sizes sits around the optimum, so approach 2's exponent is biased on an asymmetric grid (the
 * further from the optimum and the more lopsided, the worse). This runs approach 2 on the law's noise-free
 * losses at the same points and sets a2->bias (and a2->a_law); a2->a.value - bias is the corrected a. */
int approach2_design_bias(const FitPoint *pts, int n, const LawFit *law3, Approach2Fit *a2, Status *st);
/* The bias is worth a flag: over a tenth of a, or over a quarter of a's interval width. */
int approach2_bias_flagged(const Approach2Fit *f);
void approach2_free(Approach2Fit *f);

#endif
