/* ceg.h - compute-equivalent gains between two arms' fitted frontiers.
 *
 * CEG of arm B over arm A at a loss L*: C_A(L*) / C_B(L*), where C_X inverts X's frontier
 * L = E + A C^-alpha. Intervals pair the two arms' bootstrap fits resample by resample. L* levels
 * are log-spaced over the losses both arms reached; a level outside what an arm measured is marked
 * as an extrapolation. Scale dependence: the slope of log CEG against log C_A(L*) across the
 * levels, with its bootstrap interval; "grows" / "shrinks" only when the interval excludes 0,
 * "not detected" when it holds 0. */
#ifndef AP_CEG_H
#define AP_CEG_H

#include "fit/laws.h"

#define CEG_MAX_LEVELS 16

typedef struct {
    double loss;      /* L* */
    double c_ref;     /* C_A(L*): compute the reference arm needs */
    double ceg, lo, hi;
    double unreachable; /* fraction of resamples in which an arm's frontier never reaches L* */
    int extrapolated;   /* L* outside either arm's measured losses */
} CegLevel;

typedef struct {
    int n;
    CegLevel lv[CEG_MAX_LEVELS];
    double slope, slope_lo, slope_hi; /* d log CEG / d log C_A */
    char trend[24];                   /* grows | shrinks | not detected | undecided */
    int determined;                   /* both frontiers rest on enough budgets; else only illustrative */
} CegCurve;

/* ref = A, cand = B: how many times less compute B needs. n_levels <= CEG_MAX_LEVELS. */
int ceg_compute(const LawFit *ref, const LawFit *cand, int n_levels, double level, CegCurve *out);

#endif
