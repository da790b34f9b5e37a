/* frontier.h - an arm's compute-optimal frontier from its IsoFLOP profiles, with calibrated intervals.
 *
 * The frontier's points, the law through them, the noise seen across seeds, and intervals from a
 * parametric bootstrap matched to the design.
 * Frontier points, one per budget: for each seed, a parabola of loss against ln N through the
 * budget's sizes, and its vertex when it lies inside them (Chinchilla approach 2); otherwise that
 * seed's best run. The point is the mean over seeds of ln loss, at the mean exact FLOPs of the
 * budget, weighted by its seeds. An arm with one size per budget (a fixed allocation rule) gets its
 * runs as its frontier.
 * Law: L(C) = E + A C^-alpha by Huber/L-BFGS from a grid of starts, Huber's delta = 1.345 sigma.
 * Noise: sigma, the sd of one seed's frontier ln loss, pooled over budgets and arms from seed
 * replicates (else from the laws' residuals with n - 3 dof each); an arm whose residuals exceed it
 * (reduced chi-square > 1) has its noise variance inflated by that factor (lack of fit).
 * Intervals: resample b sets each point to the law's value plus N(0, sigma_b^2 lof / seeds), where
 * sigma_b^2 = sigma^2 dof / chi2(dof) carries the uncertainty of sigma itself, and refits. A
 * resample whose fit fails or reaches a bound (alpha outside [1e-3, 5]) is rejected and counted;
 * with more than 20% rejected the law is not identified. docs/FITTING.md gives the reasoning and
 * the coverage measured on planted studies. */
#ifndef AP_FRONTIER_H
#define AP_FRONTIER_H

#include "core/rng.h"
#include "core/status.h"
#include "fit/laws.h"

#define FRONTIER_MAX_SEEDS 16

typedef struct {
    int group;            /* budget group (FitPoint.group) */
    double flops;         /* mean exact FLOPs of the budget's runs: the point's C */
    double log_loss;      /* mean over seeds of ln(loss of the seed's frontier) */
    double loss;          /* exp(log_loss) */
    int n_seeds;          /* seeds behind the point: its weight */
    int n_sizes;          /* distinct model sizes (the most any seed has) */
    int n_interior;       /* seeds whose value is a parabola vertex inside the sampled sizes */
    double n_opt, d_opt;  /* geometric means of N and D at those vertices (NaN: none) */
    int seed[FRONTIER_MAX_SEEDS];             /* seed ids (0: unknown) */
    double seed_log_loss[FRONTIER_MAX_SEEDS]; /* each seed's frontier ln loss */
    double seed_n_opt[FRONTIER_MAX_SEEDS];    /* each seed's vertex N and D (NaN: not a vertex) */
    double seed_d_opt[FRONTIER_MAX_SEEDS];
    char why[96];         /* why best measured runs stood in for vertices ("" when none did) */
} FrontierPoint;

typedef struct {
    int n;                         /* frontier points, by increasing compute */
    FrontierPoint *pt;             /* n of them (allocated; frontier_free) */
    int has_law;                   /* the law was fitted (>= 2 points, converged) */
    LawFit law;                    /* E, A, alpha; lo/hi and boot (n_boot x 3, NaN rows: rejected) from the
                                    * parametric bootstrap; loss_min/max and x_min/max: the frontier's ranges */
    double *fitted;                /* n: the law's ln L at each point, the centres of the resamples */
    double sigma_seed;             /* this arm's own seed-to-seed sd of ln loss (NaN: no replicates) */
    int dof_seed;
    double sigma0;                 /* the pooled noise (sd of one seed's frontier ln loss) and its dof */
    int dof;
    int from_replicates;           /* sigma0 from seed replicates (1) or law residuals (0) */
    double chi2_red;               /* weighted residual sum of squares / (sigma0^2 (n - 3)); NaN: n <= 3 */
    double lof;                    /* lack-of-fit factor on the noise variance (>= 1) */
    double sigma;                  /* noise of one seed used for this arm: sigma0 sqrt(lof) */
    int n_boot, n_rejected;        /* resamples drawn, and rejected (fit failed or at a bound) */
    double *yboot;                 /* n_boot x n resampled frontier ln losses */
    FitParam a_exp, b_exp;         /* N* ~ C^a, D* ~ C^b through the interior vertices (t intervals) */
    int n_vertices;                /* interior vertices behind them */
    char notes[512];               /* noise, lack of fit, rejections, vertices */
    double theta[3], delta;        /* the fit's internal parameters (ln A, alpha, ln E) and Huber delta, for refits */
} Frontier;

/* Frontier points of one arm's runs (groups must be >= 0 or are formed from flops here). */
int frontier_points(const FitPoint *pts, int n, Frontier *out, Status *st);
/* Everything for every arm: pts[i].arm in 0..n_arms-1 indexes arms[] (filled; free each with
 * frontier_free, also after a failure). Budgets are matched across arms by group (by flops rounded to
 * 2 significant digits for points with group < 0), seeds by their ids. An arm without runs gets
 * n = 0. o: n_boot, seed, level, delta (the least Huber delta). */
int frontier_fit_arms(const FitPoint *pts, int n, int n_arms, const FitOptions *o, Frontier *arms, Status *st);
void frontier_free(Frontier *f);

/* Validated extrapolation: an arm's law fitted without its largest budgets predicts them. */
#define HOLDOUT_MAX 8
typedef struct {
    int k;                        /* budgets held out (0: the check could not run; why says so) */
    double flops[HOLDOUT_MAX];    /* each held-out frontier point's compute */
    double observed[HOLDOUT_MAX]; /* its loss */
    double predicted[HOLDOUT_MAX], lo[HOLDOUT_MAX], hi[HOLDOUT_MAX]; /* the law's prediction and interval */
    double error[HOLDOUT_MAX];    /* observed / predicted - 1 */
    int inside[HOLDOUT_MAX];      /* observed within [lo, hi] */
    int n_inside;
    char why[160];
} Holdout;

/* For every arm: frontiers refitted (noise pooled as in frontier_fit_arms) on all but each arm's k
 * largest budgets, and those budgets' frontier losses (from full, the frontiers of every point)
 * compared with the refit law's prediction. The prediction interval at o->level holds the law's
 * uncertainty (its resamples) and the point's own noise (sigma / sqrt(seeds)). An arm whose refit
 * has no law, or keeps fewer than 3 budgets, gets k = 0 and a reason. */
int frontier_holdout(const FitPoint *pts, int n, int n_arms, int k, const Frontier *full, const FitOptions *o,
                     Holdout *out, Status *st);

/* Refits f's law to resampled frontier ln losses y (f->n of them) from f's fit; 0 with p = (E, A,
 * alpha), -1 when the fit fails or reaches a bound (a rejected resample). */
int frontier_refit(const Frontier *f, const double *y, double p[3]);
/* ln C at which a frontier (x = ln C increasing, y = ln L, weights w) reaches ln loss `level`:
 * linear between adjacent points once y is made non-increasing (pool-adjacent-violators, each pooled
 * block one point); +INFINITY below its lowest loss, -INFINITY above its highest (no extrapolation).
 * lo/hi (may be NULL) receive the pooled range of y. */
double frontier_local_log_compute(const double *x, const double *y, const double *w, int n, double level, double *lo,
                                  double *hi);
/* One resample's noise scale sqrt(dof / chi2(dof)): the uncertainty of a sigma estimated with dof. */
double frontier_noise_scale(Rng *r, int dof);
/* Student t quantile (dof >= 1; beyond 300 dof by Cornish-Fisher's expansion around the normal). */
double fit_t_quantile(double p, int dof);

#endif
