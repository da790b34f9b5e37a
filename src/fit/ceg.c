/* ceg.c - compute-equivalent gains with paired-bootstrap intervals (see ceg.h). */
#include "fit/ceg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double q) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp);
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    if (!isfinite(v[i + 1]) || !isfinite(v[i])) return pos > i ? v[i + 1] : v[i];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

static double ols_slope(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
    return sxx > 0 ? sxy / sxx : NAN;
}

int ceg_compute(const LawFit *ref, const LawFit *cand, int n_levels, double level, CegCurve *out) {
    memset(out, 0, sizeof *out);
    if (n_levels > CEG_MAX_LEVELS) n_levels = CEG_MAX_LEVELS;
    if (n_levels < 2) n_levels = 2;
    double pa[3] = {ref->p[0].value, ref->p[1].value, ref->p[2].value};
    double pb[3] = {cand->p[0].value, cand->p[1].value, cand->p[2].value};
    /* levels: the losses both arms reached; if the ranges do not overlap, the gap between them */
    double lo = fmax(ref->loss_min, cand->loss_min), hi = fmin(ref->loss_max, cand->loss_max);
    if (!(lo < hi)) {
        double a = fmin(ref->loss_max, cand->loss_max), b = fmax(ref->loss_min, cand->loss_min);
        lo = fmin(a, b), hi = fmax(a, b);
    }
    /* stay above both floors so the point estimate exists, and keep off the last tenth of the range,
     * where a frontier bends into its floor and the compute to reach a loss is least certain */
    double floor_ = fmax(pa[0], pb[0]);
    if (lo <= floor_) lo = floor_ + 0.05 * (hi - floor_);
    lo += 0.1 * (hi - lo);
    if (!(lo < hi)) return -1;
    out->n = n_levels;
    int nb = ref->n_boot < cand->n_boot ? ref->n_boot : cand->n_boot;
    double *samples = malloc((size_t)(nb ? nb : 1) * sizeof *samples);
    double *logc = malloc((size_t)(nb ? nb : 1) * n_levels * sizeof *logc);
    double *logceg = malloc((size_t)(nb ? nb : 1) * n_levels * sizeof *logceg);
    if (!samples || !logc || !logceg) {
        free(samples), free(logc), free(logceg);
        return -1;
    }
    for (int k = 0; k < n_levels; k++) {
        CegLevel *v = &out->lv[k];
        v->loss = hi * pow(lo / hi, (double)k / (n_levels - 1)); /* from high loss (small C) to low */
        v->c_ref = frontier_compute(pa, v->loss);
        v->ceg = v->c_ref / frontier_compute(pb, v->loss);
        v->extrapolated = v->loss < ref->loss_min || v->loss > ref->loss_max || v->loss < cand->loss_min ||
                          v->loss > cand->loss_max;
        int m = 0, unreach = 0;
        for (int b = 0; b < nb; b++) {
            const double *qa = ref->boot + (size_t)b * 3, *qb = cand->boot + (size_t)b * 3;
            double ca = frontier_compute(qa, v->loss), cb = frontier_compute(qb, v->loss);
            logc[(size_t)b * n_levels + k] = log(ca);
            logceg[(size_t)b * n_levels + k] = log(ca / cb);
            if (!isfinite(qa[0]) || !isfinite(qb[0])) continue;
            if (!isfinite(ca) || !isfinite(cb)) {
                unreach++;
                /* an arm that never reaches L* needs infinite compute: it counts at the matching end */
                samples[m++] = !isfinite(ca) && isfinite(cb) ? INFINITY : !isfinite(cb) && isfinite(ca) ? 0 : NAN;
                if (isnan(samples[m - 1])) m--;
                continue;
            }
            samples[m++] = ca / cb;
        }
        v->unreachable = nb ? (double)unreach / nb : 0;
        v->lo = pct(samples, m, (1 - level) / 2);
        v->hi = pct(samples, m, 1 - (1 - level) / 2);
    }
    /* slope of log CEG on log C_A across levels, per resample */
    int m = 0;
    for (int b = 0; b < nb; b++) {
        double x[CEG_MAX_LEVELS], y[CEG_MAX_LEVELS];
        int k2 = 0;
        for (int k = 0; k < n_levels; k++) {
            double xv = logc[(size_t)b * n_levels + k], yv = logceg[(size_t)b * n_levels + k];
            if (isfinite(xv) && isfinite(yv)) x[k2] = xv, y[k2++] = yv;
        }
        if (k2 >= 2) {
            double s = ols_slope(x, y, k2);
            if (isfinite(s)) samples[m++] = s;
        }
    }
    double x[CEG_MAX_LEVELS], y[CEG_MAX_LEVELS];
    int k2 = 0;
    for (int k = 0; k < n_levels; k++)
        if (isfinite(out->lv[k].c_ref) && out->lv[k].ceg > 0 && isfinite(out->lv[k].ceg))
            x[k2] = log(out->lv[k].c_ref), y[k2++] = log(out->lv[k].ceg);
    out->slope = k2 >= 2 ? ols_slope(x, y, k2) : NAN;
    out->slope_lo = pct(samples, m, (1 - level) / 2);
    out->slope_hi = pct(samples, m, 1 - (1 - level) / 2);
    out->determined = ref->enough && cand->enough;
    if (!out->determined || !isfinite(out->slope_lo) || !isfinite(out->slope_hi) || m < nb / 2)
        snprintf(out->trend, sizeof out->trend, "undecided");
    else if (out->slope_lo > 0)
        snprintf(out->trend, sizeof out->trend, "grows");
    else if (out->slope_hi < 0)
        snprintf(out->trend, sizeof out->trend, "shrinks");
    else
        snprintf(out->trend, sizeof out->trend, "not detected");
    free(samples), free(logc), free(logceg);
    return 0;
}
