/* ablation.h - what a package of switches is worth, switch by switch (claims C2, C3).
 *
 * Given the fitted frontiers of a base recipe, the full package (base + every switch), each
 * switch added alone to the base ("one at a time", base+S over base) and the package without each
 * switch ("leave one out", full over full-S), computes at one common loss level L:
 *   single[i]   = C_base(L) / C_{base+S_i}(L)
 *   loo[i]      = C_{full-S_i}(L) / C_full(L)
 *   package     = C_base(L) / C_full(L)
 *   prod_single = prod single[i],   prod_loo = prod loo[i]
 *   interaction = package / prod_single   (1: the switches' gains multiply)
 *   c3          = prod_loo / package      (> 1: reverting one at a time costs more than reverting
 *                                          all, the seeds' claim C3)
 * each as [estimate, lo, hi]: the estimate from the fits and a 95% percentile interval over the
 * fits' bootstrap resamples, resample b of every arm taken together. L is the middle of the loss
 * range every arm reached (above every fitted floor E); when the arms share no range, the middle
 * of the union, marked extrapolated. */
#ifndef AP_ABLATION_H
#define AP_ABLATION_H

#include "fit/laws.h"

#define ABLATION_MAX 10

typedef struct {
    int n;            /* switches */
    double L;         /* the common loss level */
    int extrapolated;
    double single[ABLATION_MAX][3], loo[ABLATION_MAX][3];
    double package[3], prod_single[3], prod_loo[3], interaction[3], c3[3];
    int has_shapley;
    double shapley[ABLATION_MAX][3]; /* exp of each switch's Shapley value of ln CEG: they multiply to package */
} AblationStats;

/* plus[i], minus[i]: the frontiers of base+S_i and full-S_i. Fails (-1) only on allocation failure. */
int ablation_analyse(const LawFit *base, const LawFit *full, const LawFit *const *plus, const LawFit *const *minus,
                     int n, AblationStats *out);

/* With every subset of the n switches measured (a factorial design; by_mask[m] is the frontier of
 * the base plus the switches whose bits are set in m, by_mask[0] the base), the Shapley value of
 * each switch in the game v(S) = ln(C_base(L) / C_S(L)) at ab->L (set by ablation_analyse):
 *   phi_i = sum over S without i of |S|! (n-|S|-1)! / n! [v(S + i) - v(S)],
 * the switch's gain averaged over every order of adding the switches. The phi_i sum to
 * ln package, so exp(phi_i) multiply to the package's CEG; when the gains multiply (no
 * interaction) exp(phi_i) is each switch's own gain. Intervals as above. n <= 5. */
int ablation_shapley(const LawFit *const *by_mask, int n, AblationStats *ab);

#endif
