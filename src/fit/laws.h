/* laws.h - scaling-law fits with bootstrap confidence intervals.
 *
 * Three laws, fitted the way the literature fits them:
 *   frontier    L(C) = E + A C^-alpha per arm, on its compute-optimal runs
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
    int group; /* budget group for approach 2 (-1: none) */
} FitPoint;

typedef struct {
    double value, lo, hi; /* estimate and percentile interval */
    int identified;
} FitParam;

#define FIT_MAX_PARAMS 5

typedef struct {
    int law;           /* FIT_FRONTIER, FIT_APPROACH3 */
    int n_points;
    int n_params;
    FitParam p[FIT_MAX_PARAMS]; /* frontier: E, A, alpha; approach 3: E, A, B, alpha, beta */
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

enum { FIT_FRONTIER = 0, FIT_APPROACH3 = 1 };

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
void law_fit_free(LawFit *f);
/* Predicted loss of a frontier at compute C, and the compute at which it reaches loss L
 * (INFINITY when L <= E), for parameters (E, A, alpha). */
double frontier_loss(const double *p, double C);
double frontier_compute(const double *p, double L);

#define FIT_MAX_GROUPS 64

typedef struct {
    int n_groups;
    struct {
        double budget;       /* mean FLOPs of the group */
        int n;               /* points */
        double c0, c1, c2;   /* L = c0 + c1 x + c2 x^2, x = ln N */
        double n_opt, l_opt; /* the parabola's minimum */
        int ok;              /* a minimum inside the sampled range */
        char why[96];
    } g[FIT_MAX_GROUPS];
    FitParam a, b;   /* N* ~ C^a, D* ~ C^b (b = 1 - a when D = C / (k N)) */
    FitParam log_k;  /* N* = exp(log_k) C^a */
    int identified;
    char notes[512];
} Approach2Fit;

/* Groups: pts[i].group (budgets); needs >= 3 points in >= 2 groups. */
int fit_chinchilla_approach2(const FitPoint *pts, int n, const FitOptions *o, Approach2Fit *out, Status *st);

#endif
