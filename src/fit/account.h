/* account.h - accounting for progress rates: conversions, decompositions, rate fits, and a
 * simulation of how scale-dependent gains bend a fitted "halving time" (claims C13, C14).
 *
 * A total efficiency factor F over Y years is an annual multiplier m = F^(1/Y), log10(F)/Y orders
 * of magnitude per year, and a halving time (of the compute needed for a fixed result) of
 * 12 Y ln 2 / ln F months. These identities are exact; every function here is a few lines. */
#ifndef AP_ACCOUNT_H
#define AP_ACCOUNT_H

#include "core/status.h"

#include <stdint.h>

typedef struct {
    double factor;         /* total over the period */
    double years;
    double annual;         /* multiplier per year */
    double oom_per_year;
    double halving_months; /* months for the needed compute to halve */
} Rate;

/* Completes a Rate from years plus one of factor, annual, oom_per_year or halving_months
 * (the others NAN). */
int rate_complete(Rate *r, Status *st);

typedef struct {
    char name[64];
    double factor;
} Factor;

typedef struct {
    double product;   /* of the named factors */
    double residual;  /* total / product: what the factors do not explain */
    double share[32]; /* each factor's share of log(total) */
    double residual_share;
} Decomposition;

int decompose(double total, const Factor *f, int n, Decomposition *out, Status *st);

/* Least-squares rate from (year, compute needed to reach a fixed result) points, with a
 * percentile bootstrap interval of the halving time. */
typedef struct {
    double oom_per_year, lo, hi; /* of the decline of needed compute: positive = getting cheaper */
    double halving_months, halving_lo, halving_hi;
    int n;
} RateFit;

int rate_fit(const double *year, const double *compute, int n, int n_boot, uint64_t seed, RateFit *out, Status *st);

/* Claim C13: a world with steady scale-independent progress (annual factor `steady`) and one
 * scale-dependent innovation from year `switch_year`, whose gain at compute C is
 * gain0 * (C / c0)^slope; the frontier's compute grows by `compute_growth` per year. Models are
 * sampled each year at a scale set by `frontier_share` (0: all at the fixed small scale c0,
 * 1: all at the frontier) and a rate is fitted the usual way. */
typedef struct {
    double year0, year1, switch_year;
    double steady, gain0, slope, c0, compute_growth, frontier_share;
    int per_year;
    uint64_t seed;
} Simulation;

void simulation_default(Simulation *s);
int simulate_rate(const Simulation *s, RateFit *out, Status *st);

/* Accounting that composes (claims C13, C14): measured CEGs of innovations adopted at stated dates,
 * multiplied into progress per year with intervals propagated. Each gain is drawn log-normally from
 * its 95% interval (the wider side's half-width in log / 1.96, as if symmetric in log); an unbounded
 * side (lo <= 0, hi not finite) makes the composed interval unbounded on that side. With a scale
 * trend (slope = d ln CEG / d ln C and its interval), the same gains are also extrapolated from the
 * compute they were measured at to `scale_up` times more, gain x scale_up^slope, slope drawn too. */
typedef struct {
    char name[64];
    double year;                      /* adopted */
    double gain, lo, hi;              /* CEG and its 95% interval */
    double compute;                   /* the compute it was measured at (the reference's, FLOPs) */
    double slope, slope_lo, slope_hi; /* NaN: no trend known (taken as 0 when extrapolating) */
} ComposeGain;

typedef struct {
    double year0, year1; /* the period: gains adopted in [year0, year1] count */
    double scale_up;     /* compute of the extrapolation over the measured compute (NaN: none) */
    int draws;           /* Monte Carlo draws (default 20000) */
    uint64_t seed;
} ComposeOptions;

typedef struct {
    int used;                 /* gains inside the period */
    double years;
    /* [estimate, lo, hi]: at the measured scale, then extrapolated (NaN without scale_up); lo = 0
     * or hi = INFINITY when unbounded; a halving time is INFINITY when the total is <= 1 */
    double total[3], annual[3], oom[3], halving[3];
    double total_x[3], annual_x[3], oom_x[3], halving_x[3];
    char unbounded[160];      /* which gains left a side unbounded */
} ComposeResult;

int account_compose(const ComposeGain *g, int n, const ComposeOptions *o, ComposeResult *out, Status *st);

#endif
