/* ceg.c - compute-equivalent gains with paired-bootstrap intervals (see ceg.h). */
#include "fit/ceg.h"

#include "core/rng.h"

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
        v->method = CEG_LAW;
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

/* ---------------------------------------------------------------- two frontiers */

const char *ceg_method_name(int method) { return method == CEG_LOCAL ? "local" : "law"; }

/* A frontier's abscissae x = ln C and weights w (seeds), for local interpolation. */
typedef struct {
    double *x, *w;
    int n;
} FrontierAxis;

static int axis_of(const Frontier *f, FrontierAxis *a) {
    a->n = f->n;
    a->x = malloc(2 * (size_t)(f->n ? f->n : 1) * sizeof *a->x);
    if (!a->x) return -1;
    a->w = a->x + f->n;
    for (int i = 0; i < f->n; i++) a->x[i] = log(f->pt[i].flops), a->w[i] = f->pt[i].n_seeds;
    return 0;
}

/* ln C_X(level) by the chosen method: the law's inverse (p = E, A, alpha) or local interpolation. */
static double log_compute(const FrontierAxis *a, int law, const double *p, const double *y, double level) {
    if (law) {
        double c = frontier_compute(p, exp(level));
        return c > 0 ? log(c) : -INFINITY;
    }
    return frontier_local_log_compute(a->x, y, a->w, a->n, level, NULL, NULL);
}

/* ln C_A - ln C_B, NaN when both are infinite the same way (neither arm tells anything). */
static double log_ratio(double la, double lb) {
    if (isnan(la) || isnan(lb) || (isinf(la) && isinf(lb) && (la > 0) == (lb > 0))) return NAN;
    return la - lb;
}

/* Correlation of the two arms' seed deviations from their budget means, at budgets and seeds both
 * have (seed 0, unknown, never pairs); *m: its degrees of freedom. NaN when m < 3. */
static double seed_correlation(const Frontier *a, const Frontier *b, int *m) {
    double sab = 0, saa = 0, sbb = 0;
    *m = 0;
    for (int i = 0; i < a->n; i++) {
        const FrontierPoint *p = &a->pt[i], *q = NULL;
        for (int j = 0; j < b->n && !q; j++)
            if (b->pt[j].group == p->group) q = &b->pt[j];
        if (!q) continue;
        double ya[FRONTIER_MAX_SEEDS], yb[FRONTIER_MAX_SEEDS], ma = 0, mb = 0;
        int k = 0;
        for (int s = 0; s < p->n_seeds; s++)
            for (int t = 0; t < q->n_seeds; t++)
                if (p->seed[s] && p->seed[s] == q->seed[t]) ya[k] = p->seed_log_loss[s], yb[k++] = q->seed_log_loss[t];
        if (k < 2) continue;
        for (int s = 0; s < k; s++) ma += ya[s] / k, mb += yb[s] / k;
        for (int s = 0; s < k; s++)
            sab += (ya[s] - ma) * (yb[s] - mb), saa += (ya[s] - ma) * (ya[s] - ma), sbb += (yb[s] - mb) * (yb[s] - mb);
        *m += k - 1;
    }
    return *m >= 3 && saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

/* One joint resample of both frontiers' ln losses: each seed's deviation is N(0, 1), the candidate's
 * correlated rho with the reference's at the same budget and seed; a point is its seeds' mean. */
static void draw_pair(const Frontier *f[2], double rho, double scale, Rng *r, double *y0, double *y1,
                      double (*u)[FRONTIER_MAX_SEEDS]) {
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < f[k]->n; i++) {
            const FrontierPoint *p = &f[k]->pt[i];
            double sum = 0;
            for (int s = 0; s < p->n_seeds; s++) {
                double z = rng_normal(r);
                if (k == 1 && rho > 0 && p->seed[s]) /* pair with the reference's same budget and seed */
                    for (int j = 0; j < f[0]->n; j++) {
                        const FrontierPoint *q = &f[0]->pt[j];
                        if (q->group != p->group) continue;
                        for (int t = 0; t < q->n_seeds; t++)
                            if (q->seed[t] == p->seed[s]) z = rho * u[j][t] + sqrt(1 - rho * rho) * z;
                    }
                if (k == 0) u[i][s] = z;
                sum += z;
            }
            double centre = f[k]->has_law ? f[k]->fitted[i] : p->log_loss;
            (k ? y1 : y0)[i] = centre + f[k]->sigma * scale * sum / p->n_seeds;
        }
}

/* ceg_pair with its scratch: both frontiers' axes, observed ln losses and one resample's seed draws. */
static int ceg_pair_with(const Frontier *ref, const Frontier *cand, int n_levels, const FitOptions *opt, CegCurve *out,
                         const FrontierAxis ax[2], double *yobs0, double *yobs1, double (*u)[FRONTIER_MAX_SEEDS],
                         Status *st) {
    FitOptions o;
    if (opt) o = *opt;
    else fit_options_default(&o);
    memset(out, 0, sizeof *out);
    out->slope = out->slope_lo = out->slope_hi = out->rho = NAN;
    snprintf(out->trend, sizeof out->trend, "undecided");
    if (ref->n < 2 || cand->n < 2)
        return status_fail(st, AP_EINVAL, "a CEG needs two frontiers of at least 2 budgets (have %d and %d)", ref->n,
                           cand->n);
    const Frontier *f[2] = {ref, cand};
    int law = ref->has_law && cand->has_law && ref->law.identified && cand->law.identified;
    double p0[2][3], *yobs[2] = {yobs0, yobs1}, ymin[2], ymax[2], plo[2], phi[2];
    for (int k = 0; k < 2; k++) {
        law_public(f[k]->theta, p0[k]);
        ymin[k] = INFINITY, ymax[k] = -INFINITY;
        for (int i = 0; i < f[k]->n; i++) {
            yobs[k][i] = f[k]->pt[i].log_loss;
            ymin[k] = fmin(ymin[k], yobs[k][i]), ymax[k] = fmax(ymax[k], yobs[k][i]);
        }
        frontier_local_log_compute(ax[k].x, yobs[k], ax[k].w, f[k]->n, NAN, &plo[k], &phi[k]);
    }
    /* levels: the middle 80% of the ln losses both reached (after pooling, for local interpolation) */
    double lo = law ? fmax(ymin[0], ymin[1]) : fmax(plo[0], plo[1]);
    double hi = law ? fmin(ymax[0], ymax[1]) : fmin(phi[0], phi[1]);
    int gap = 0;
    if (!(lo < hi)) {
        if (!law)
            return status_fail(st, AP_EINVAL,
                               "the two frontiers share no loss range and their laws are not both identified: no CEG "
                               "without extrapolation");
        double a = fmin(ymax[0], ymax[1]), b = fmax(ymin[0], ymin[1]);
        lo = fmin(a, b), hi = fmax(a, b), gap = 1;
    } else {
        double span = hi - lo;
        lo += 0.1 * span, hi -= 0.1 * span;
    }
    if (law) { /* stay above both floors, where the inverse exists */
        double fl = log(fmax(p0[0][0], p0[1][0]));
        if (lo <= fl) lo = fl + 0.05 * (hi - fl);
    }
    if (!(lo < hi)) return status_fail(st, AP_EINVAL, "the two frontiers share no loss range above their floors");
    if (n_levels > CEG_MAX_LEVELS) n_levels = CEG_MAX_LEVELS;
    if (n_levels < 2) n_levels = 2;
    out->n = n_levels;
    double lv[CEG_MAX_LEVELS], lca[CEG_MAX_LEVELS], lr[CEG_MAX_LEVELS];
    for (int k = 0; k < n_levels; k++) {
        CegLevel *v = &out->lv[k];
        lv[k] = hi + (lo - hi) * k / (n_levels - 1); /* from high loss (small C) to low */
        double la = log_compute(&ax[0], law, p0[0], yobs[0], lv[k]), lb = log_compute(&ax[1], law, p0[1], yobs[1], lv[k]);
        v->loss = exp(lv[k]), v->c_ref = exp(la), v->ceg = exp(log_ratio(la, lb));
        lca[k] = la, lr[k] = log_ratio(la, lb);
        v->method = law ? CEG_LAW : CEG_LOCAL;
        v->extrapolated = gap || lv[k] < fmax(ymin[0], ymin[1]) || lv[k] > fmin(ymax[0], ymax[1]);
        v->lo = v->hi = NAN;
    }
    out->determined = ref->law.enough && cand->law.enough;
    /* the point slope */
    {
        double x[CEG_MAX_LEVELS], y[CEG_MAX_LEVELS];
        int m = 0;
        for (int k = 0; k < n_levels; k++)
            if (isfinite(lca[k]) && isfinite(lr[k])) x[m] = lca[k], y[m++] = lr[k];
        out->slope = m >= 2 ? ols_slope(x, y, m) : NAN;
    }
    out->rho = seed_correlation(ref, cand, &out->rho_pairs);
    if (isfinite(out->rho)) { /* a chance correlation would narrow the intervals: use it less one standard error */
        double z = atanh(fmin(fmax(out->rho, -0.999), 0.999)) - 1 / sqrt(out->rho_pairs);
        out->rho_used = fmin(fmax(tanh(z), 0), 0.9);
    }
    size_t l0 = strlen(out->notes);
    snprintf(out->notes + l0, sizeof out->notes - l0, "%s",
             law ? "from the two laws" : "local interpolation between frontier points (a law is not identified)");
    if (!isfinite(ref->sigma) || !isfinite(cand->sigma) || o.n_boot <= 0) {
        out->determined = 0;
        l0 = strlen(out->notes);
        snprintf(out->notes + l0, sizeof out->notes - l0, "; no noise estimate: no intervals");
        return 0;
    }
    int nb = o.n_boot;
    int reuse = out->rho_used == 0 && ref->n_boot == nb && cand->n_boot == nb && ref->yboot && cand->yboot &&
                ref->dof == cand->dof;
    double *sa = malloc((size_t)nb * n_levels * sizeof *sa), *sr = malloc((size_t)nb * n_levels * sizeof *sr);
    double *col = malloc((size_t)nb * sizeof *col);
    if (!sa || !sr || !col) {
        free(sa), free(sr), free(col);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    Rng scale, z;
    rng_seed(&scale, o.seed ^ 0xc0ffee11c0ffee11ULL);
    rng_seed(&z, o.seed ^ 0x7e57ab1e7e57ab1eULL);
    int dof = ref->dof < cand->dof ? ref->dof : cand->dof, used = 0;
    size_t stride = (size_t)(ref->n > cand->n ? ref->n : cand->n);
    double *ys = NULL, *ps = malloc((size_t)nb * 6 * sizeof *ps);
    int *ok = malloc((size_t)nb * sizeof *ok);
    if (!reuse) ys = malloc((size_t)nb * 2 * stride * sizeof *ys);
    if (!ps || !ok || (!reuse && !ys)) {
        free(sa), free(sr), free(col), free(ys), free(ps), free(ok);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    /* resamples: reused (independent arms: their own, drawn with the same noise scales, pair as they
     * are) or drawn jointly in order, then refitted on any number of threads */
    for (int b = 0; !reuse && b < nb; b++)
        draw_pair(f, out->rho_used, frontier_noise_scale(&scale, dof), &z, ys + (size_t)b * 2 * stride,
                  ys + ((size_t)b * 2 + 1) * stride, u);
#pragma omp parallel for schedule(dynamic, 8) if (nb >= 64 && law && !reuse)
    for (int b = 0; b < nb; b++) {
        ok[b] = 1;
        for (int k = 0; k < 2; k++) {
            double *p = ps + (size_t)b * 6 + 3 * k;
            if (reuse) {
                memcpy(p, f[k]->law.boot + (size_t)b * 3, 3 * sizeof *p);
                if (law && !isfinite(p[0])) ok[b] = 0;
            } else if (law && frontier_refit(f[k], ys + ((size_t)b * 2 + k) * stride, p)) {
                ok[b] = 0;
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        if (!ok[b]) {
            out->n_rejected++;
            continue;
        }
        const double *y0 = reuse ? ref->yboot + (size_t)b * ref->n : ys + (size_t)b * 2 * stride;
        const double *y1 = reuse ? cand->yboot + (size_t)b * cand->n : ys + ((size_t)b * 2 + 1) * stride;
        const double *p0b = ps + (size_t)b * 6, *p1b = p0b + 3;
        for (int k = 0; k < n_levels; k++) {
            double la = log_compute(&ax[0], law, p0b, y0, lv[k]), lb = log_compute(&ax[1], law, p1b, y1, lv[k]);
            sa[(size_t)used * n_levels + k] = la, sr[(size_t)used * n_levels + k] = log_ratio(la, lb);
        }
        used++;
    }
    free(ys), free(ps), free(ok);
    out->n_boot = nb;
    for (int k = 0; k < n_levels; k++) {
        CegLevel *v = &out->lv[k];
        int m = 0, unreach = 0;
        for (int b = 0; b < used; b++) {
            double a = sa[(size_t)b * n_levels + k], r = sr[(size_t)b * n_levels + k];
            unreach += !isfinite(a) || !isfinite(r);
            if (!isnan(r)) col[m++] = exp(r);
        }
        v->unreachable = used ? (double)unreach / used : 0;
        v->lo = pct(col, m, (1 - o.level) / 2);
        v->hi = pct(col, m, 1 - (1 - o.level) / 2);
    }
    int ms = 0;
    for (int b = 0; b < used; b++) {
        double x[CEG_MAX_LEVELS], y[CEG_MAX_LEVELS];
        int m = 0;
        for (int k = 0; k < n_levels; k++) {
            double a = sa[(size_t)b * n_levels + k], r = sr[(size_t)b * n_levels + k];
            if (isfinite(a) && isfinite(r)) x[m] = a, y[m++] = r;
        }
        double s = m >= 2 ? ols_slope(x, y, m) : NAN;
        if (isfinite(s)) col[ms++] = s;
    }
    out->slope_lo = pct(col, ms, (1 - o.level) / 2);
    out->slope_hi = pct(col, ms, 1 - (1 - o.level) / 2);
    int above = 0, below = 0;
    for (int k = 0; k < n_levels; k++) above += out->lv[k].lo > 1, below += out->lv[k].hi < 1;
    if (!out->determined || ms < used / 2 || !isfinite(out->slope_lo) || !isfinite(out->slope_hi)) {
        snprintf(out->trend, sizeof out->trend, "undecided");
    } else if (out->slope_lo <= 0 && out->slope_hi >= 0) {
        snprintf(out->trend, sizeof out->trend, "not detected");
    } else if (above >= 2 || below >= 2) {
        snprintf(out->trend, sizeof out->trend, out->slope_lo > 0 ? "grows" : "shrinks");
    } else { /* a slope in a gain that is itself not established */
        snprintf(out->trend, sizeof out->trend, "undecided");
    }
    l0 = strlen(out->notes);
    if (isfinite(out->rho))
        snprintf(out->notes + l0, sizeof out->notes - l0, "; seed correlation %.2f (%d dof), %.2f used", out->rho,
                 out->rho_pairs, out->rho_used);
    l0 = strlen(out->notes);
    if (out->n_rejected)
        snprintf(out->notes + l0, sizeof out->notes - l0, "; %d of %d joint resamples rejected", out->n_rejected, nb);
    free(sa), free(sr), free(col);
    return 0;
}

int ceg_pair(const Frontier *ref, const Frontier *cand, int n_levels, const FitOptions *opt, CegCurve *out,
             Status *st) {
    memset(out, 0, sizeof *out);
    FrontierAxis ax[2] = {{0}};
    double *y = malloc((size_t)(ref->n + cand->n + 1) * sizeof *y);
    double(*u)[FRONTIER_MAX_SEEDS] = malloc((size_t)(ref->n + 1) * sizeof *u);
    int rc = !y || !u || axis_of(ref, &ax[0]) || axis_of(cand, &ax[1])
                 ? status_fail(st, AP_ENOMEM, "out of memory")
                 : ceg_pair_with(ref, cand, n_levels, opt, out, ax, y, y + ref->n, u, st);
    free(y), free(u), free(ax[0].x), free(ax[1].x);
    return rc;
}
