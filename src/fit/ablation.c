/* ablation.c - one-at-a-time, leave-one-out and whole-package gains (see ablation.h). */
#include "fit/ablation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Compute a frontier needs to reach L: with its fitted parameters (b < 0) or resample b's. */
static double needed(const LawFit *f, int b, double L) {
    double q[3] = {f->p[0].value, f->p[1].value, f->p[2].value};
    return frontier_compute(b < 0 ? q : f->boot + (size_t)b * 3, L);
}

static int cmpd(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* 95% percentile interval of the finite positive values (v is reordered). */
static void interval_of(double *v, int n, double out[3]) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) v[m++] = v[i];
    qsort(v, (size_t)m, sizeof *v, cmpd);
    out[1] = m ? v[(int)(0.025 * (m - 1))] : NAN;
    out[2] = m ? v[(int)ceil(0.975 * (m - 1))] : NAN;
}

int ablation_analyse(const LawFit *base, const LawFit *full, const LawFit *const *plus, const LawFit *const *minus,
                     int n, AblationStats *ab) {
    memset(ab, 0, sizeof *ab);
    if (n > ABLATION_MAX) n = ABLATION_MAX;
    ab->n = n;
    const LawFit *all[2 * ABLATION_MAX + 2];
    int k = 0;
    all[k++] = base, all[k++] = full;
    for (int i = 0; i < n; i++) all[k++] = plus[i], all[k++] = minus[i];
    double lo = 0, hi = INFINITY, lmin = INFINITY, lmax = 0;
    int nb = base->n_boot;
    for (int i = 0; i < k; i++) {
        lo = fmax(lo, all[i]->loss_min), hi = fmin(hi, all[i]->loss_max);
        lmin = fmin(lmin, all[i]->loss_min), lmax = fmax(lmax, all[i]->loss_max);
        lo = fmax(lo, all[i]->p[0].value * 1.001); /* above every floor */
        if (all[i]->n_boot < nb) nb = all[i]->n_boot;
    }
    ab->extrapolated = !(lo < hi);
    ab->L = ab->extrapolated ? fmax(lo, 0.5 * (lmin + lmax)) : 0.5 * (lo + hi);
    /* columns: single[0..n), loo[ABLATION_MAX..), then package, products, interaction, c3 */
    enum { PKG = 2 * ABLATION_MAX, PS, PL, INTER, C3, STRIDE };
    double *s = malloc((size_t)(nb + 1) * STRIDE * sizeof *s), *col = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *col);
    if (!s || !col) {
        free(s), free(col);
        return -1;
    }
    for (int b = -1; b < nb; b++) {
        double *row = s + (size_t)(b + 1) * STRIDE;
        double cb = needed(base, b, ab->L), cf = needed(full, b, ab->L), ps = 1, pl = 1;
        for (int i = 0; i < n; i++) {
            row[i] = cb / needed(plus[i], b, ab->L);
            row[ABLATION_MAX + i] = needed(minus[i], b, ab->L) / cf;
            ps *= row[i], pl *= row[ABLATION_MAX + i];
        }
        double pkg = cb / cf;
        row[PKG] = pkg, row[PS] = ps, row[PL] = pl, row[INTER] = pkg / ps, row[C3] = pl / pkg;
    }
    double *dst[STRIDE] = {0};
    for (int i = 0; i < n; i++) dst[i] = ab->single[i], dst[ABLATION_MAX + i] = ab->loo[i];
    dst[PKG] = ab->package, dst[PS] = ab->prod_single, dst[PL] = ab->prod_loo;
    dst[INTER] = ab->interaction, dst[C3] = ab->c3;
    for (int c = 0; c < STRIDE; c++) {
        if (!dst[c]) continue;
        dst[c][0] = s[c];
        for (int b = 0; b < nb; b++) col[b] = s[(size_t)(b + 1) * STRIDE + c];
        interval_of(col, nb, dst[c]);
    }
    free(col);
    free(s);
    return 0;
}

int ablation_shapley(const LawFit *const *by_mask, int n, AblationStats *ab) {
    if (n < 1 || n > 5) return -1;
    int masks = 1 << n, nb = by_mask[0]->n_boot;
    for (int m = 1; m < masks; m++)
        if (by_mask[m]->n_boot < nb) nb = by_mask[m]->n_boot;
    double w[6], fact[7] = {1};
    for (int i = 1; i <= 6; i++) fact[i] = fact[i - 1] * i;
    for (int k = 0; k < n; k++) w[k] = fact[k] * fact[n - k - 1] / fact[n];
    double *s = malloc((size_t)(nb + 1) * (size_t)n * sizeof *s), *col = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *col);
    if (!s || !col) {
        free(s), free(col);
        return -1;
    }
    for (int b = -1; b < nb; b++) {
        double v[32], cb = needed(by_mask[0], b, ab->L);
        for (int m = 0; m < masks; m++) v[m] = log(cb / needed(by_mask[m], b, ab->L));
        for (int i = 0; i < n; i++) {
            double phi = 0;
            for (int m = 0; m < masks; m++)
                if (!(m & (1 << i))) phi += w[__builtin_popcount((unsigned)m)] * (v[m | (1 << i)] - v[m]);
            s[(size_t)(b + 1) * n + i] = exp(phi);
        }
    }
    for (int i = 0; i < n; i++) {
        ab->shapley[i][0] = s[i];
        for (int b = 0; b < nb; b++) col[b] = s[(size_t)(b + 1) * n + i];
        interval_of(col, nb, ab->shapley[i]);
    }
    ab->has_shapley = 1;
    free(col);
    free(s);
    return 0;
}
