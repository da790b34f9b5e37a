/* laws.c - frontier, Chinchilla approach 2 and 3 fits, bootstrap intervals (see laws.h). */
#include "fit/laws.h"

#include "core/rng.h"
#include "fit/lbfgs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fit_options_default(FitOptions *o) {
    o->n_boot = 1000;
    o->seed = 42;
    o->level = 0.95;
    o->delta = 1e-3;
}

typedef struct {
    int law, n;
    const int *idx; /* which points (bootstrap resample); NULL: all */
    const double *lx, *ly, *ll; /* log compute (or log N), log D, log loss */
    const double *rep;          /* Muennighoff: repetitions R = epochs - 1 per point */
    const double *w;            /* weights (NULL: 1): a point that is a mean of w seeds */
    double delta;
    double emin;                /* frontier: ln E below this counts as this (flat), -INFINITY: none */
} Objective;

static inline double huber(double r, double d, double *dr) {
    if (fabs(r) <= d) {
        *dr = r;
        return 0.5 * r * r;
    }
    *dr = r > 0 ? d : -d;
    return d * (fabs(r) - 0.5 * d);
}

/* Huber objective of log residuals and its gradient, for either law. */
static int law_n_params(int law) { return law == FIT_FRONTIER ? 3 : law == FIT_APPROACH3 ? 5 : 6; }

double muennighoff_effective_fraction(double epochs, double rstar) {
    double R = epochs > 1 ? epochs - 1 : 0;
    return R > 0 ? (1 + rstar * -expm1(-R / rstar)) / (R + 1) : 1.0;
}

/* ln D' and its derivative in ln R*, for ln D, R repetitions and r = ln R* */
static double effective_log_data(double ly, double R, double r, double *dr) {
    *dr = 0;
    if (!(R > 0)) return ly;
    double Rs = exp(r), x = R / Rs, e = exp(-x), g = 1 + Rs * -expm1(-x);
    *dr = Rs * (-expm1(-x) - x * e) / g;
    return ly - log1p(R) + log(g);
}

static double objective(const double *t, double *g, void *ctx) {
    const Objective *o = ctx;
    int np = law_n_params(o->law);
    for (int k = 0; k < np; k++) g[k] = 0;
    double f = 0;
    for (int j = 0; j < o->n; j++) {
        int i = o->idx ? o->idx[j] : j;
        double terms[3], w[3], ld = o->ly ? o->ly[i] : 0, dld = 0;
        int nt;
        if (o->law == FIT_FRONTIER) { /* t = (log A, alpha, e) */
            terms[0] = t[0] - t[1] * o->lx[i];
            terms[1] = fmax(t[2], o->emin);
            nt = 2;
        } else { /* t = (a, b, e, alpha, beta[, ln R*]) */
            if (o->law == FIT_MUENNIGHOFF) ld = effective_log_data(ld, o->rep[i], t[5], &dld);
            terms[0] = t[0] - t[3] * o->lx[i];
            terms[1] = t[1] - t[4] * ld;
            terms[2] = t[2];
            nt = 3;
        }
        double m = terms[0];
        for (int k = 1; k < nt; k++) m = fmax(m, terms[k]);
        double s = 0;
        for (int k = 0; k < nt; k++) s += (w[k] = exp(terms[k] - m));
        for (int k = 0; k < nt; k++) w[k] /= s;
        double sw = o->w ? sqrt(o->w[i]) : 1; /* residual in units of one seed's noise */
        double dr, r = (m + log(s) - o->ll[i]) * sw;
        f += huber(r, o->delta, &dr);
        dr *= sw;
        if (o->law == FIT_FRONTIER) {
            g[0] += dr * w[0];
            g[1] -= dr * w[0] * o->lx[i];
            g[2] += t[2] > o->emin ? dr * w[1] : 0;
        } else {
            g[0] += dr * w[0];
            g[1] += dr * w[1];
            g[2] += dr * w[2];
            g[3] -= dr * w[0] * o->lx[i];
            g[4] -= dr * w[1] * ld;
            if (o->law == FIT_MUENNIGHOFF) g[5] -= dr * w[1] * t[4] * dld;
        }
    }
    return f;
}

double frontier_loss(const double *p, double C) { return p[0] + p[1] * pow(C, -p[2]); }

double frontier_compute(const double *p, double L) {
    if (!(L > p[0]) || !(p[2] > 0)) return INFINITY;
    return pow(p[1] / (L - p[0]), 1.0 / p[2]);
}

void law_public(const double t[3], double p[3]) { p[0] = exp(t[2]), p[1] = exp(t[0]), p[2] = t[1]; }

double law_log_loss(const double t[3], double x) {
    double a = t[0] - t[1] * x, e = t[2], m = fmax(a, e);
    return m + log(exp(a - m) + exp(e - m));
}

double law_fit_logs(const double *x, const double *y, const double *w, int n, double delta, int grid, double t[3]) {
    /* ln C sits far from 0, where ln A and alpha are nearly collinear: fit around the mean ln C
     * (ln A' = ln A - alpha mean) and convert back */
    double mx = 0, *xc = malloc((size_t)(n > 0 ? n : 1) * sizeof *xc);
    if (!xc) return INFINITY;
    for (int i = 0; i < n; i++) mx += x[i] / n;
    for (int i = 0; i < n; i++) xc[i] = x[i] - mx;
    double lmin = INFINITY;
    for (int i = 0; i < n; i++) lmin = fmin(lmin, exp(y[i]));
    /* a floor under a thousandth of the lowest loss is no floor: below it the objective is flat in
     * ln E, so a fit without one converges there instead of crawling toward E = 0 */
    Objective ob = {FIT_FRONTIER, n, NULL, xc, NULL, y, NULL, w, delta, log(1e-3 * lmin)};
    /* the objective is a sum of squared log residuals (~1e-4 each): stop once 5 iterations gain less
     * than 1e-10, which moves the parameters by ~1e-5, far inside any interval */
    LbfgsOptions lo = {500, 1e-9, 1e-10};
    if (!grid) {
        double s[3] = {t[0] - t[1] * mx, t[1], t[2]};
        LbfgsResult r = lbfgs_minimize(3, s, objective, &ob, &lo);
        t[0] = s[0] + s[1] * mx, t[1] = s[1], t[2] = fmax(s[2], ob.emin);
        free(xc);
        return isfinite(r.f) ? r.f : INFINITY;
    }
    double best[3] = {0, 0, 0}, bestf = INFINITY;
    /* floors from near zero to near the lowest loss, and exponents from flat to steep */
    const double efrac[] = {0.02, 0.3, 0.6, 0.9}, alphas[] = {0.03, 0.08, 0.15, 0.3, 0.5, 0.8};
    for (int ie = 0; ie < 4; ie++)
        for (int ia = 0; ia < 6; ia++) {
            double E = efrac[ie] * lmin, s[3], la = 0;
            for (int i = 0; i < n; i++) la += log(exp(y[i]) - E) + alphas[ia] * xc[i];
            s[0] = la / n, s[1] = alphas[ia], s[2] = log(E);
            LbfgsResult r = lbfgs_minimize(3, s, objective, &ob, &lo);
            if (isfinite(r.f) && r.f < bestf) bestf = r.f, memcpy(best, s, sizeof s);
        }
    if (isfinite(bestf)) t[0] = best[0] + best[1] * mx, t[1] = best[1], t[2] = fmax(best[2], ob.emin);
    free(xc);
    return bestf;
}

/* internal parameters -> reported ones (E, A, alpha) or (E, A, B, alpha, beta) */
static void to_public(int law, const double *t, double *p) {
    if (law == FIT_FRONTIER) {
        p[0] = exp(t[2]), p[1] = exp(t[0]), p[2] = t[1];
    } else {
        p[0] = exp(t[2]), p[1] = exp(t[0]), p[2] = exp(t[1]), p[3] = t[3], p[4] = t[4];
        if (law == FIT_MUENNIGHOFF) p[5] = exp(t[5]);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, int n, double q) {
    if (n == 0) return NAN;
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

void fit_interval(const double *boot, int nb, int stride, int k, double level, double *lo, double *hi) {
    double *col = malloc((size_t)(nb ? nb : 1) * sizeof *col);
    int m = 0;
    for (int b = 0; b < nb; b++)
        if (isfinite(boot[(size_t)b * stride + k])) col[m++] = boot[(size_t)b * stride + k];
    qsort(col, (size_t)m, sizeof *col, cmp_double);
    *lo = quantile(col, m, (1 - level) / 2);
    *hi = quantile(col, m, 1 - (1 - level) / 2);
    free(col);
}

static void note(char *notes, size_t size, const char *fmt, const char *what, double lo, double hi) {
    size_t l = strlen(notes);
    snprintf(notes + l, size - l, fmt, l ? "; " : "", what, lo, hi);
}

#define GRID_POINTS 500 /* the grid of starts searches at most this many points ... */
#define GRID_REFINE 8     /* ... and refines this many best starts on all of them */

static int fit_law(int law, const FitPoint *pts, int n, const FitOptions *opt, LawFit *out, Status *st) {
    FitOptions o;
    if (opt) o = *opt;
    else fit_options_default(&o);
    memset(out, 0, sizeof *out);
    int np = law_n_params(law);
    out->law = law;
    out->n_points = n;
    out->n_params = np;
    if (n < 2) return status_fail(st, AP_EINVAL, "a fit needs points: got %d", n);
    double *lx = malloc((size_t)n * sizeof *lx), *ly = malloc((size_t)n * sizeof *ly), *ll = malloc((size_t)n * sizeof *ll);
    double *rep = calloc((size_t)n, sizeof *rep);
    if (!lx || !ly || !ll || !rep) {
        free(lx), free(ly), free(ll), free(rep);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) rep[i] = pts[i].epochs > 1 ? pts[i].epochs - 1 : 0;
    out->loss_min = INFINITY, out->loss_max = -INFINITY, out->x_min = INFINITY, out->x_max = -INFINITY;
    for (int i = 0; i < n; i++) {
        double x = law == FIT_FRONTIER ? pts[i].flops : pts[i].params, y = pts[i].tokens, L = pts[i].loss;
        if (!(x > 0) || !(L > 0) || (law != FIT_FRONTIER && !(y > 0))) {
            free(lx), free(ly), free(ll), free(rep);
            return status_fail(st, AP_EINVAL, "point %d: %s and loss must be positive", i + 1,
                               law == FIT_FRONTIER ? "flops" : "params, tokens");
        }
        lx[i] = log(x), ly[i] = law != FIT_FRONTIER ? log(y) : 0, ll[i] = log(L);
        out->loss_min = fmin(out->loss_min, L), out->loss_max = fmax(out->loss_max, L);
        out->x_min = fmin(out->x_min, x), out->x_max = fmax(out->x_max, x);
    }
    Objective ob = {law, n, NULL, lx, ly, ll, rep, NULL, o.delta, -INFINITY};
    double best[FIT_MAX_PARAMS], bestf = INFINITY;
    /* grid of starting points */
    if (law == FIT_FRONTIER) {
        bestf = law_fit_logs(lx, ll, NULL, n, o.delta, 1, best);
    } else { /* Hoffmann et al.'s grid, 4500 starts on any number of threads (R* cycling through 2, 8, 32);
              * the best (first on ties) wins. Past GRID_POINTS points the grid is searched on an evenly
              * spaced subsample of them, and its GRID_REFINE best starts are refined on every point: the
              * same optimum for a fraction of the time (10,000 points: minutes -> seconds) */
        int starts = 6 * 6 * 5 * 5 * 5, w = np + 1, m = n > GRID_POINTS ? GRID_POINTS : n;
        double *ts = malloc((size_t)starts * w * sizeof *ts);
        int *sub = malloc((size_t)m * sizeof *sub);
        if (!ts || !sub) {
            free(lx), free(ly), free(ll), free(rep), free(ts), free(sub);
            return status_fail(st, AP_ENOMEM, "out of memory");
        }
        for (int i = 0; i < m; i++) sub[i] = (int)((long long)i * n / m);
        Objective os = ob;
        if (m < n) os.idx = sub, os.n = m;
#pragma omp parallel for schedule(dynamic, 16)
        for (int gs = 0; gs < starts; gs++) {
            double *t = ts + (size_t)gs * w;
            int g = gs, ia = g / 750, ib = g / 125 % 6, ie = g / 25 % 5, ial = g / 5 % 5, ibe = g % 5;
            t[0] = 5.0 * ia, t[1] = 5.0 * ib, t[2] = -1 + 0.5 * ie, t[3] = 0.5 * ial, t[4] = 0.5 * ibe;
            if (law == FIT_MUENNIGHOFF) t[5] = log(2.0) + log(4.0) * (g % 3); /* R* = 2, 8, 32 */
            t[np] = lbfgs_minimize(np, t, objective, &os, NULL).f;
        }
        if (m < n) {
            /* the GRID_REFINE best starts (by their subsample objective), refined on every point */
            int top[GRID_REFINE], nt = 0;
            for (int g = 0; g < starts; g++) {
                double f = ts[(size_t)g * w + np];
                if (!isfinite(f)) continue;
                if (nt == GRID_REFINE && f >= ts[(size_t)top[nt - 1] * w + np]) continue; /* not among the best */
                int k = nt < GRID_REFINE ? nt++ : GRID_REFINE - 1; /* a free slot, or the worst one's */
                while (k > 0 && ts[(size_t)top[k - 1] * w + np] > f) top[k] = top[k - 1], k--;
                top[k] = g;
            }
            for (int k = 0; k < nt; k++) {
                double *t = ts + (size_t)top[k] * w;
                t[np] = lbfgs_minimize(np, t, objective, &ob, NULL).f;
                if (isfinite(t[np]) && t[np] < bestf) bestf = t[np], memcpy(best, t, (size_t)np * sizeof *best);
            }
        } else {
            for (int g = 0; g < starts; g++)
                if (isfinite(ts[(size_t)g * w + np]) && ts[(size_t)g * w + np] < bestf)
                    bestf = ts[(size_t)g * w + np], memcpy(best, ts + (size_t)g * w, (size_t)np * sizeof *best);
        }
        free(ts), free(sub);
    }
    if (!isfinite(bestf)) {
        free(lx), free(ly), free(ll), free(rep);
        return status_fail(st, AP_EINVAL, "the fit did not converge from any starting point");
    }
    out->objective = bestf;
    double p[FIT_MAX_PARAMS], g[FIT_MAX_PARAMS];
    to_public(law, best, p);
    double ss = 0;
    {
        /* rmse of log residuals (the Huber objective is not in natural units) */
        Objective o2 = ob;
        o2.delta = INFINITY;
        ss = objective(best, g, &o2);
        out->rmse_log = sqrt(2 * ss / n);
    }
    /* bootstrap: every resample drawn first, in order, then refitted on any number of threads */
    out->n_boot = o.n_boot;
    out->boot = malloc((size_t)(o.n_boot ? o.n_boot : 1) * np * sizeof *out->boot);
    int *idx = malloc((size_t)(o.n_boot ? o.n_boot : 1) * n * sizeof *idx);
    if (!out->boot || !idx) {
        free(idx), free(lx), free(ly), free(ll), free(rep);
        law_fit_free(out);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    Rng rng;
    rng_seed(&rng, o.seed);
    for (size_t i = 0; i < (size_t)o.n_boot * n; i++) idx[i] = (int)rng_below(&rng, (uint64_t)n);
#pragma omp parallel for schedule(dynamic, 8)
    for (int b = 0; b < o.n_boot; b++) {
        const int *ib = idx + (size_t)b * n;
        double t[FIT_MAX_PARAMS], q[FIT_MAX_PARAMS], f = INFINITY;
        memcpy(t, best, sizeof t);
        if (law == FIT_FRONTIER) {
            double *bx = malloc((size_t)n * sizeof *bx), *by = malloc((size_t)n * sizeof *by);
            if (bx && by) {
                for (int i = 0; i < n; i++) bx[i] = lx[ib[i]], by[i] = ll[ib[i]];
                f = law_fit_logs(bx, by, NULL, n, o.delta, 0, t);
            }
            free(bx), free(by);
        } else {
            Objective ob2 = ob;
            ob2.idx = ib;
            f = lbfgs_minimize(np, t, objective, &ob2, NULL).f;
        }
        to_public(law, t, q);
        for (int k = 0; k < np; k++) out->boot[(size_t)b * np + k] = isfinite(f) ? q[k] : NAN;
    }
    free(idx);
    free(lx), free(ly), free(ll);
    static const char *names3[] = {"E", "A", "alpha"}, *names6[] = {"E", "A", "B", "alpha", "beta", "R*"};
    const char *const *names = law == FIT_FRONTIER ? names3 : names6;
    out->identified = 1;
    for (int k = 0; k < np; k++) {
        out->p[k].value = p[k];
        fit_interval(out->boot, o.n_boot, np, k, o.level, &out->p[k].lo, &out->p[k].hi);
        out->p[k].identified = 1;
    }
    /* what the data cannot pin down: first, enough distinct settings (repeated seeds do not count) */
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            double xi = law == FIT_FRONTIER ? pts[i].flops : pts[i].params, xj = law == FIT_FRONTIER ? pts[j].flops : pts[j].params;
            seen = fabs(xi / xj - 1) < 1e-6 && (law == FIT_FRONTIER || fabs(pts[i].tokens / pts[j].tokens - 1) < 1e-6) &&
                   (law != FIT_MUENNIGHOFF || fabs(rep[i] - rep[j]) < 1e-6);
        }
        distinct += !seen;
    }
    out->enough = distinct > np;
    if (distinct <= np) {
        for (int k = 0; k < np; k++) out->p[k].identified = 0;
        snprintf(out->notes, sizeof out->notes,
                 "%d distinct %s for %d parameters: the law is not identified (needs at least %d)", distinct,
                 law == FIT_FRONTIER ? "budgets" : "(N, D) settings", np, np + 1);
    } else {
        for (int k = 0; k < np; k++) {
            FitParam *q = &out->p[k];
            int exponent = (law == FIT_FRONTIER && k == 2) || (law != FIT_FRONTIER && (k == 3 || k == 4));
            int bad = 0;
            if (exponent && (q->value < 0.005 || q->value > 5)) bad = 1;
            if (exponent && q->hi - q->lo > fmax(1.0, 2 * fabs(q->value))) bad = 1;
            if (!exponent && k == 0 && (q->lo < 0.02 * out->loss_min || q->value < 0.02 * out->loss_min)) bad = 2;
            if (!exponent && k > 0 && q->lo > 0 && q->hi / q->lo > 1e3) bad = 1;
            if (!isfinite(q->lo) || !isfinite(q->hi)) bad = 1;
            if (bad) {
                q->identified = 0;
                out->identified = 0;
                note(out->notes, sizeof out->notes,
                     bad == 2 ? "%s%s not identified (the data show no floor: interval %.3g..%.3g)"
                              : "%s%s not identified (interval %.3g..%.3g)",
                     names[k], q->lo, q->hi);
            }
        }
    }
    if (law == FIT_MUENNIGHOFF) { /* R* shows only in runs that repeat their data */
        int repeated = 0;
        for (int i = 0; i < n; i++) repeated += rep[i] > 0;
        if (!repeated && out->p[5].identified) {
            out->p[5].identified = 0;
            out->identified = 0;
            size_t l = strlen(out->notes);
            snprintf(out->notes + l, sizeof out->notes - l, "%sR* not identified (no run repeats its data)",
                     l ? "; " : "");
        }
    }
    if (distinct <= np) out->identified = 0;
    if (law != FIT_FRONTIER) {
        /* N_opt ~ C^(beta/(alpha+beta)), D_opt ~ C^(alpha/(alpha+beta)) */
        double *ab = malloc((size_t)(o.n_boot ? o.n_boot : 1) * 2 * sizeof *ab);
        for (int b = 0; ab && b < o.n_boot; b++) {
            double al = out->boot[(size_t)b * np + 3], be = out->boot[(size_t)b * np + 4];
            ab[2 * b] = be / (al + be), ab[2 * b + 1] = al / (al + be);
        }
        out->a_exp.value = p[4] / (p[3] + p[4]);
        out->b_exp.value = p[3] / (p[3] + p[4]);
        if (ab) {
            fit_interval(ab, o.n_boot, 2, 0, o.level, &out->a_exp.lo, &out->a_exp.hi);
            fit_interval(ab, o.n_boot, 2, 1, o.level, &out->b_exp.lo, &out->b_exp.hi);
        }
        out->a_exp.identified = out->b_exp.identified = out->p[3].identified && out->p[4].identified;
        free(ab);
    }
    free(rep);
    return 0;
}

int fit_frontier(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st) {
    return fit_law(FIT_FRONTIER, pts, n, o, out, st);
}

int fit_chinchilla_approach3(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st) {
    return fit_law(FIT_APPROACH3, pts, n, o, out, st);
}

void muennighoff_fraction(const LawFit *f, double epochs, double level, double out[3]) {
    out[0] = muennighoff_effective_fraction(epochs, f->p[5].value);
    out[1] = out[2] = NAN;
    double *col = malloc((size_t)(f->n_boot ? f->n_boot : 1) * sizeof *col);
    if (!col) return;
    for (int b = 0; b < f->n_boot; b++) {
        double r = f->boot[(size_t)b * f->n_params + 5];
        col[b] = isfinite(r) ? muennighoff_effective_fraction(epochs, r) : NAN;
    }
    fit_interval(col, f->n_boot, 1, 0, level, &out[1], &out[2]);
    free(col);
}

int fit_muennighoff(const FitPoint *pts, int n, const FitOptions *o, LawFit *out, Status *st) {
    return fit_law(FIT_MUENNIGHOFF, pts, n, o, out, st);
}

void law_fit_free(LawFit *f) {
    free(f->boot);
    f->boot = NULL;
}

/* ---------------------------------------------------------------- approach 2 */

int fit_parabola(const double *x, const double *y, int n, double c[3]) {
    double S[5] = {0}, T[3] = {0};
    for (int i = 0; i < n; i++) {
        double p = 1;
        for (int k = 0; k < 5; k++) {
            S[k] += p;
            if (k < 3) T[k] += p * y[i];
            p *= x[i];
        }
    }
    double M[3][4] = {{S[0], S[1], S[2], T[0]}, {S[1], S[2], S[3], T[1]}, {S[2], S[3], S[4], T[2]}};
    for (int col = 0; col < 3; col++) { /* Gaussian elimination with partial pivoting */
        int piv = col;
        for (int r = col + 1; r < 3; r++)
            if (fabs(M[r][col]) > fabs(M[piv][col])) piv = r;
        if (fabs(M[piv][col]) < 1e-300) return -1;
        for (int k = 0; k < 4; k++) {
            double t = M[col][k];
            M[col][k] = M[piv][k], M[piv][k] = t;
        }
        for (int r = 0; r < 3; r++) {
            if (r == col) continue;
            double f = M[r][col] / M[col][col];
            for (int k = col; k < 4; k++) M[r][k] -= f * M[col][k];
        }
    }
    for (int k = 0; k < 3; k++) c[k] = M[k][3] / M[k][k];
    return 0;
}

/* Points of approach 2 by budget group: members of group g are idx[start[g] .. start[g + 1]). */
typedef struct {
    int n_groups;
    int *start, *idx;
} GroupIndex;

static int group_index_build(const FitPoint *pts, int n, int n_groups, GroupIndex *gi) {
    gi->n_groups = n_groups;
    gi->start = calloc((size_t)n_groups + 1, sizeof *gi->start);
    gi->idx = malloc((size_t)(n ? n : 1) * sizeof *gi->idx);
    if (!gi->start || !gi->idx) return -1;
    for (int i = 0; i < n; i++) gi->start[pts[i].group + 1]++;
    for (int g = 0; g < n_groups; g++) gi->start[g + 1] += gi->start[g];
    int *fill = calloc((size_t)n_groups + 1, sizeof *fill);
    if (!fill) return -1;
    for (int i = 0; i < n; i++) gi->idx[gi->start[pts[i].group] + fill[pts[i].group]++] = i;
    free(fill);
    return 0;
}

static void group_index_free(GroupIndex *gi) { free(gi->start), free(gi->idx); }

/* One pass of approach 2: per budget group the parabola of loss in ln N through the points
 * pick[start[g] .. start[g + 1]) (indices into pts; loss from loss[] when given), its vertex, then the
 * two slopes; returns the budgets with an interior vertex. Scratch: 3 * (largest group) doubles plus
 * 3 * n_groups. */
static int approach2_pass(const FitPoint *pts, const double *loss, const GroupIndex *gi, const int *pick,
                          Approach2Fit *out, double *a, double *b, double *logk, int record, double *scratch) {
    int largest = 0;
    for (int g = 0; g < gi->n_groups; g++)
        if (gi->start[g + 1] - gi->start[g] > largest) largest = gi->start[g + 1] - gi->start[g];
    double *xs = scratch, *ds = xs + largest, *ys = ds + largest;
    double *cx = ys + largest, *cn = cx + gi->n_groups, *cd = cn + gi->n_groups;
    int m = 0;
    for (int g = 0; g < gi->n_groups; g++) {
        double fl = 0, xmin = INFINITY, xmax = -INFINITY;
        int k = 0;
        for (int j = gi->start[g]; j < gi->start[g + 1]; j++) {
            int i = pick[j];
            const FitPoint *p = &pts[i];
            xs[k] = log(p->params), ds[k] = log(p->tokens), ys[k] = loss ? loss[i] : p->loss, fl += p->flops;
            xmin = fmin(xmin, xs[k]), xmax = fmax(xmax, xs[k]);
            k++;
        }
        double c[3], cdd[3];
        int ok = k >= 3 && !fit_parabola(xs, ys, k, c) && c[2] > 0;
        int okd = ok && !fit_parabola(ds, ys, k, cdd) && cdd[2] > 0;
        double xo = ok ? -c[1] / (2 * c[2]) : NAN;
        if (record) {
            out->g[g].n = k;
            out->g[g].budget = k ? fl / k : NAN;
            out->g[g].grid_lo = exp(xmin), out->g[g].grid_hi = exp(xmax);
            if (ok) {
                out->g[g].c0 = c[0], out->g[g].c1 = c[1], out->g[g].c2 = c[2];
                out->g[g].n_opt = exp(xo);
                out->g[g].l_opt = c[0] + c[1] * xo + c[2] * xo * xo;
            }
            out->g[g].ok = ok && xo >= xmin && xo <= xmax;
            snprintf(out->g[g].why, sizeof out->g[g].why, "%s",
                     k < 3 ? "fewer than 3 models" : !ok ? "no minimum (the parabola opens downward)"
                     : xo < xmin || xo > xmax ? "minimum outside the sampled sizes" : "");
        }
        if (ok && okd && xo >= xmin - 1e-9 && xo <= xmax + 1e-9) {
            cx[m] = log(fl / k), cn[m] = xo, cd[m] = -cdd[1] / (2 * cdd[2]);
            m++;
        }
    }
    if (m < 2) return -1;
    double mx = 0, mn = 0, md = 0, sxx = 0, sxn = 0, sxd = 0;
    for (int i = 0; i < m; i++) mx += cx[i], mn += cn[i], md += cd[i];
    mx /= m, mn /= m, md /= m;
    for (int i = 0; i < m; i++) {
        sxx += (cx[i] - mx) * (cx[i] - mx);
        sxn += (cx[i] - mx) * (cn[i] - mn);
        sxd += (cx[i] - mx) * (cd[i] - md);
    }
    if (sxx <= 0) return -1;
    *a = sxn / sxx, *b = sxd / sxx, *logk = mn - *a * mx;
    return m;
}

int approach2_bias_flagged(const Approach2Fit *f) {
    return isfinite(f->bias) &&
           (fabs(f->bias) > 0.1 * fabs(f->a.value) || (isfinite(f->a.lo) && fabs(f->bias) > 0.25 * (f->a.hi - f->a.lo)));
}

void approach2_free(Approach2Fit *f) {
    free(f->g);
    f->g = NULL;
    f->n_groups = 0;
}

int fit_chinchilla_approach2(const FitPoint *pts, int n, const FitOptions *opt, Approach2Fit *out, Status *st) {
    FitOptions o;
    if (opt) o = *opt;
    else fit_options_default(&o);
    memset(out, 0, sizeof *out);
    out->bias = out->a_law = NAN;
    out->a.value = out->a.lo = out->a.hi = out->b.value = out->b.lo = out->b.hi = NAN;
    out->log_k.value = out->log_k.lo = out->log_k.hi = NAN;
    for (int i = 0; i < n; i++) {
        if (pts[i].group < 0)
            return status_fail(st, AP_EINVAL, "point %d: approach 2 needs every point in a budget group", i + 1);
        if (!(pts[i].params > 0) || !(pts[i].tokens > 0) || !(pts[i].flops > 0))
            return status_fail(st, AP_EINVAL, "point %d: params, tokens and flops must be positive", i + 1);
        if (pts[i].group + 1 > out->n_groups) out->n_groups = pts[i].group + 1;
    }
    GroupIndex gi = {0};
    out->g = calloc((size_t)(out->n_groups ? out->n_groups : 1), sizeof *out->g);
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    double *scratch = malloc((3 * (size_t)n + 3 * (size_t)out->n_groups + 1) * sizeof *scratch);
    double *boot = malloc((size_t)(o.n_boot ? o.n_boot : 1) * 3 * sizeof *boot);
    int rc = 0;
    if (!out->g || !idx || !scratch || !boot || group_index_build(pts, n, out->n_groups, &gi)) {
        rc = status_fail(st, AP_ENOMEM, "out of memory");
        goto done;
    }
    double a, b, lk;
    int m = approach2_pass(pts, NULL, &gi, gi.idx, out, &a, &b, &lk, 1, scratch);
    if (m < 2) {
        snprintf(out->notes, sizeof out->notes,
                 "fewer than 2 budgets have a minimum inside their sampled sizes: the allocation exponents are not "
                 "identified (use allocation = isoflop with >= 3 sizes per budget)");
        out->identified = 0;
        goto done;
    }
    out->a.value = a, out->b.value = b, out->log_k.value = lk;
    /* bootstrap: resample points within each budget group */
    Rng rng;
    rng_seed(&rng, o.seed);
    for (int bb = 0; bb < o.n_boot; bb++) {
        for (int g = 0; g < gi.n_groups; g++) {
            int s0 = gi.start[g], cnt = gi.start[g + 1] - s0;
            for (int j = 0; j < cnt; j++) idx[s0 + j] = gi.idx[s0 + (int)rng_below(&rng, (uint64_t)cnt)];
        }
        double ba, bbv, bl;
        int ok = approach2_pass(pts, NULL, &gi, idx, out, &ba, &bbv, &bl, 0, scratch) >= 2;
        boot[3 * bb] = ok ? ba : NAN, boot[3 * bb + 1] = ok ? bbv : NAN, boot[3 * bb + 2] = ok ? bl : NAN;
    }
    fit_interval(boot, o.n_boot, 3, 0, o.level, &out->a.lo, &out->a.hi);
    fit_interval(boot, o.n_boot, 3, 1, o.level, &out->b.lo, &out->b.hi);
    fit_interval(boot, o.n_boot, 3, 2, o.level, &out->log_k.lo, &out->log_k.hi);
    out->identified = m >= 3 && isfinite(out->a.lo) && out->a.hi - out->a.lo < 1.0;
    out->a.identified = out->b.identified = out->identified;
    snprintf(out->notes, sizeof out->notes, "%d budgets with an interior minimum%s", m,
             m < 3 ? "; two budgets fix a slope but not its uncertainty: treat the exponents as not identified" : "");
done:
    if (out->g) group_index_free(&gi);
    free(idx), free(scratch), free(boot);
    if (rc) approach2_free(out);
    return rc;
}

int approach2_design_bias(const FitPoint *pts, int n, const LawFit *law3, Approach2Fit *a2, Status *st) {
    a2->bias = NAN;
    if (law3->law != FIT_APPROACH3 || !isfinite(a2->a.value)) return 0;
    double E = law3->p[0].value, A = law3->p[1].value, B = law3->p[2].value, al = law3->p[3].value,
           be = law3->p[4].value;
    if (!(al > 0 && be > 0 && A > 0 && B > 0)) return 0;
    GroupIndex gi = {0};
    double *loss = malloc((size_t)(n ? n : 1) * sizeof *loss);
    double *scratch = malloc((3 * (size_t)n + 3 * (size_t)a2->n_groups + 1) * sizeof *scratch);
    int rc = 0;
    if (!loss || !scratch || group_index_build(pts, n, a2->n_groups, &gi)) {
        rc = status_fail(st, AP_ENOMEM, "out of memory");
    } else {
        /* the noise-free losses the law gives on the study's own grid, through approach 2 */
        for (int i = 0; i < n; i++) loss[i] = E + A / pow(pts[i].params, al) + B / pow(pts[i].tokens, be);
        double a, b, lk;
        Approach2Fit tmp = *a2;
        tmp.g = NULL;
        if (approach2_pass(pts, loss, &gi, gi.idx, &tmp, &a, &b, &lk, 0, scratch) >= 2) {
            a2->bias = a - be / (al + be);
            a2->a_law = be / (al + be);
        }
    }
    if (scratch) group_index_free(&gi);
    free(loss), free(scratch);
    return rc;
}
