/* ceg.h - compute-equivalent gains between two arms' fitted frontiers.
 *
 * CEG of arm B over arm A at a loss L*: C_A(L*) / C_B(L*), the compute A needs over the compute B
 * needs. ceg_pair works on two frontiers (fit/frontier.h): levels L* are log-spaced, from high loss
 * to low, over the middle 80% of the losses both frontiers reached. C_X(L*) inverts X's law
 * L = E + A C^-alpha when both laws are identified ("law"); otherwise it interpolates ln C against
 * ln L between X's adjacent frontier points, made monotone first, never beyond them ("local").
 * Intervals: a joint parametric bootstrap of both frontiers, paired by budget and seed (the two arms'
 * seed deviations at matching budget and seed are correlated as the data show), each resample
 * refitted or reinterpolated; a level an arm cannot reach in a resample makes that side infinite.
 * Scale dependence: the slope of ln CEG against ln C_A(L*) across the levels, with its interval;
 * "grows" / "shrinks" only when the interval excludes 0 and at least 2 levels' CEG intervals lie on
 * the same side of 1, "not detected" when it holds 0, "undecided" otherwise or when the comparison
 * is not determined (a frontier on fewer than 4 budgets, or no noise estimate).
 * ceg_compute is the older form on two LawFits, pairing their bootstrap rows b (law only). */
#ifndef AP_CEG_H
#define AP_CEG_H

#include "fit/frontier.h"
#include "fit/laws.h"

#define CEG_MAX_LEVELS 16
/* The loss levels the report and `algoprog fit` read a CEG at (the same in both). */
#define CEG_REPORT_LEVELS 6

enum { CEG_LAW = 0, CEG_LOCAL = 1 };

typedef struct {
    double loss;      /* L* */
    double c_ref;     /* C_A(L*): compute the reference arm needs */
    double ceg, lo, hi;
    double unreachable; /* fraction of resamples in which an arm's frontier never reaches L* */
    int extrapolated;   /* L* outside either arm's measured losses */
    int method;         /* CEG_LAW or CEG_LOCAL */
} CegLevel;

typedef struct {
    int n;
    CegLevel lv[CEG_MAX_LEVELS];
    double slope, slope_lo, slope_hi; /* d log CEG / d log C_A */
    char trend[24];                   /* grows | shrinks | not detected | undecided */
    int determined;                   /* both frontiers rest on enough budgets; else only illustrative */
    double rho, rho_used;             /* correlation of the arms' seed deviations: estimate (NaN: none), used */
    int rho_pairs;                    /* degrees of freedom behind the estimate */
    int n_boot, n_rejected;           /* joint resamples, and those rejected (a law fit failed) */
    char notes[256];
} CegCurve;

/* ref = A, cand = B: how many times less compute B needs. n_levels <= CEG_MAX_LEVELS. */
int ceg_compute(const LawFit *ref, const LawFit *cand, int n_levels, double level, CegCurve *out);
/* ref = A, cand = B, two frontiers of frontier_fit_arms (one call, so they share noise and groups).
 * o: n_boot, seed, level. -1 with a Status when they cannot be compared (a frontier under 2 budgets,
 * or no shared loss range without two identified laws). */
int ceg_pair(const Frontier *ref, const Frontier *cand, int n_levels, const FitOptions *o, CegCurve *out, Status *st);
const char *ceg_method_name(int method);

#endif
