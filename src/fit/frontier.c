/* frontier.c - frontier points, noise, law and parametric bootstrap of each arm (see frontier.h). */
#include "fit/frontier.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUBER_K 1.345      /* Huber's constant: 95% efficiency when the noise is Gaussian */
#define REJECT_MAX 0.2     /* more rejected resamples than this and the law is not identified */
#define ALPHA_MIN 1e-3     /* a resample's alpha outside these bounds does not identify a law */
#define ALPHA_MAX 5.0
#define PI 3.14159265358979323846

__attribute__((format(printf, 3, 4))) static void appendf(char *buf, size_t size, const char *fmt, ...) {
    size_t l = strlen(buf);
    if (l + 1 >= size) return;
    if (l) snprintf(buf + l, size - l, "; "), l = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, size - l, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- frontier points */

/* Gives points without a group one from their flops rounded to 2 significant digits, numbered after
 * the largest group in use, so arms fitted together share budgets. */
static int assign_groups(FitPoint *p, int n, Status *st) {
    int next = 0;
    for (int i = 0; i < n; i++)
        if (p[i].group >= next) next = p[i].group + 1;
    double *key = malloc((size_t)(n > 0 ? n : 1) * sizeof *key);
    if (!key) return status_fail(st, AP_ENOMEM, "out of memory");
    int nk = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].group >= 0) continue;
        if (!(p[i].flops > 0)) {
            free(key);
            return status_fail(st, AP_EINVAL, "point %d: flops must be positive", i + 1);
        }
        double e = pow(10, floor(log10(p[i].flops)) - 1), b = round(p[i].flops / e) * e;
        int k = 0;
        while (k < nk && fabs(key[k] / b - 1) > 1e-9) k++;
        if (k == nk) key[nk++] = b;
        p[i].group = next + k;
    }
    free(key);
    return 0;
}

/* One seed's value at one budget: the vertex of the parabola of loss in ln N when it lies inside the
 * sampled sizes, else the best run; returns ln loss. x = ln N, d = ln D (centred here). */
static double seed_value(const double *x, const double *d, const double *l, int k, int *sizes, double *n_opt,
                         double *d_opt, const char **why) {
    int distinct = 0, best = 0;
    double xmin = INFINITY, xmax = -INFINITY, mx = 0, md = 0;
    for (int i = 0; i < k; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = fabs(x[i] - x[j]) < 1e-9;
        distinct += !seen;
        if (l[i] < l[best]) best = i;
        xmin = fmin(xmin, x[i]), xmax = fmax(xmax, x[i]);
        mx += x[i] / k, md += d[i] / k;
    }
    *sizes = distinct, *n_opt = NAN, *d_opt = NAN;
    if (distinct < 3) {
        *why = distinct == 1 ? "one size per budget" : "fewer than 3 sizes";
        return log(l[best]);
    }
    /* centred abscissae keep the normal equations well conditioned */
    double sc[2 * 64], *xc = k <= 64 ? sc : malloc(2 * (size_t)k * sizeof *xc), c[3], cd[3] = {0, 0, 0};
    if (!xc) {
        *why = "out of memory";
        return log(l[best]);
    }
    double *dc = xc + k;
    for (int i = 0; i < k; i++) xc[i] = x[i] - mx, dc[i] = d[i] - md;
    int bad = fit_parabola(xc, l, k, c) || !(c[2] > 0), dbad = bad || fit_parabola(dc, l, k, cd) || !(cd[2] > 0);
    if (xc != sc) free(xc);
    if (bad) {
        *why = "the parabola opens downward";
        return log(l[best]);
    }
    double v = -c[1] / (2 * c[2]);
    if (v + mx < xmin - 1e-12 || v + mx > xmax + 1e-12) {
        *why = "the minimum lies outside the sampled sizes";
        return log(l[best]);
    }
    double lv = c[0] + c[1] * v + c[2] * v * v;
    if (!(lv > 0)) {
        *why = "the vertex loss is not positive";
        return log(l[best]);
    }
    *why = NULL;
    *n_opt = exp(v + mx);
    if (!dbad) *d_opt = exp(md - cd[1] / (2 * cd[2]));
    return log(lv);
}

static int run_cmp(const void *a, const void *b) {
    const FrontierPoint *x = a, *y = b;
    return (x->flops > y->flops) - (x->flops < y->flops);
}

int frontier_points(const FitPoint *in, int n, Frontier *out, Status *st) {
    memset(out, 0, sizeof *out);
    out->sigma_seed = out->chi2_red = out->sigma = out->sigma0 = NAN;
    out->lof = 1;
    out->a_exp.value = out->b_exp.value = NAN;
    if (n <= 0) return 0;
    FitPoint *p = malloc((size_t)n * sizeof *p);
    double *x = malloc((size_t)n * sizeof *x), *d = malloc((size_t)n * sizeof *d), *l = malloc((size_t)n * sizeof *l);
    int *done = calloc((size_t)n, sizeof *done), rc = 0;
    out->pt = calloc((size_t)n, sizeof *out->pt); /* at most one point per run */
    out->fitted = calloc((size_t)n, sizeof *out->fitted);
    if (!p || !x || !d || !l || !done || !out->pt || !out->fitted) {
        rc = status_fail(st, AP_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(p, in, (size_t)n * sizeof *p);
    for (int i = 0; i < n && !rc; i++)
        if (!(p[i].params > 0) || !(p[i].tokens > 0) || !(p[i].flops > 0) || !(p[i].loss > 0) || !isfinite(p[i].loss))
            rc = status_fail(st, AP_EINVAL, "point %d: params, tokens, flops and loss must be positive", i + 1);
    if (rc || (rc = assign_groups(p, n, st))) goto out;
    /* done: 0 untouched, 1 its budget is counted, 2 its seed's value is taken */
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        FrontierPoint *fp = &out->pt[out->n++];
        fp->group = p[i].group;
        int runs = 0, fallback = 0, n_ln_d = 0;
        const char *why = NULL;
        double sum_ln_n = 0, sum_ln_d = 0;
        for (int j = i; j < n; j++)
            if (p[j].group == fp->group) fp->flops += p[j].flops, runs++, done[j] = 1;
        for (int j = i; j < n; j++) {
            if (p[j].group != fp->group || done[j] == 2) continue;
            int seed = p[j].seed, k = 0;
            for (int q = j; q < n; q++)
                if (p[q].group == fp->group && p[q].seed == seed)
                    x[k] = log(p[q].params), d[k] = log(p[q].tokens), l[k++] = p[q].loss, done[q] = 2;
            if (fp->n_seeds == FRONTIER_MAX_SEEDS) {
                rc = status_fail(st, AP_EINVAL, "more than %d seeds at one budget", FRONTIER_MAX_SEEDS);
                goto out;
            }
            int s = fp->n_seeds++, sizes;
            const char *w;
            fp->seed[s] = seed;
            fp->seed_log_loss[s] = seed_value(x, d, l, k, &sizes, &fp->seed_n_opt[s], &fp->seed_d_opt[s], &w);
            if (sizes > fp->n_sizes) fp->n_sizes = sizes;
            if (w) fallback++, why = w;
            else {
                fp->n_interior++, sum_ln_n += log(fp->seed_n_opt[s]);
                if (isfinite(fp->seed_d_opt[s])) sum_ln_d += log(fp->seed_d_opt[s]), n_ln_d++;
            }
            fp->log_loss += fp->seed_log_loss[s];
        }
        fp->flops /= runs;
        fp->log_loss /= fp->n_seeds;
        fp->loss = exp(fp->log_loss);
        fp->n_opt = fp->n_interior ? exp(sum_ln_n / fp->n_interior) : NAN;
        fp->d_opt = n_ln_d ? exp(sum_ln_d / n_ln_d) : NAN;
        if (fallback == fp->n_seeds) snprintf(fp->why, sizeof fp->why, "best measured run: %s", why);
        else if (fallback) snprintf(fp->why, sizeof fp->why, "%d of %d seeds took their best run: %s", fallback,
                                    fp->n_seeds, why);
    }
    qsort(out->pt, (size_t)out->n, sizeof out->pt[0], run_cmp);
out:
    if (rc) {
        free(out->pt), free(out->fitted);
        out->pt = NULL, out->fitted = NULL, out->n = 0;
    }
    free(p), free(x), free(d), free(l), free(done);
    return rc;
}

/* ---------------------------------------------------------------- law and refits */

static void frontier_xw(const Frontier *f, double *x, double *w) {
    for (int i = 0; i < f->n; i++) x[i] = log(f->pt[i].flops), w[i] = f->pt[i].n_seeds;
}

/* The law's fit to the observed points; the weighted residual sum of squares in *ss. */
static void fit_point(Frontier *f, double delta, double *ss) {
    double t[3] = {0, 0, 0};
    *ss = 0;
    f->has_law = 0;
    f->delta = delta;
    if (f->n < 2) return;
    double *x = malloc(3 * (size_t)f->n * sizeof *x), *y = x + f->n, *w = y + f->n;
    if (!x) return; /* no memory: no law, said as "did not converge" */
    frontier_xw(f, x, w);
    for (int i = 0; i < f->n; i++) y[i] = f->pt[i].log_loss;
    double obj = law_fit_logs(x, y, w, f->n, delta, 1, t);
    if (!isfinite(obj)) {
        free(x);
        return;
    }
    f->has_law = 1;
    memcpy(f->theta, t, sizeof t);
    f->law.objective = obj;
    double s2 = 0;
    for (int i = 0; i < f->n; i++) {
        f->fitted[i] = law_log_loss(t, x[i]);
        double r = y[i] - f->fitted[i];
        *ss += w[i] * r * r, s2 += r * r;
    }
    f->law.rmse_log = sqrt(s2 / f->n);
    free(x);
}

static int acceptable(const double *t, double obj) {
    double p[3];
    law_public(t, p);
    return isfinite(obj) && p[2] >= ALPHA_MIN && p[2] <= ALPHA_MAX && isfinite(p[0]) && isfinite(p[1]) && p[1] > 0;
}

int frontier_refit(const Frontier *f, const double *y, double p[3]) {
    if (!f->has_law) return -1;
    double sx[2 * 64], *x = f->n <= 64 ? sx : malloc(2 * (size_t)f->n * sizeof *x), t[3], lmin = INFINITY;
    if (!x) return -1;
    double *w = x + f->n;
    frontier_xw(f, x, w);
    for (int i = 0; i < f->n; i++) lmin = fmin(lmin, exp(y[i]));
    memcpy(t, f->theta, sizeof t);
    double obj = law_fit_logs(x, y, w, f->n, f->delta, 0, t);
    law_public(t, p);
    /* the gradient in ln E vanishes as E -> 0, so a start without a floor cannot find one: when the
     * refit has none, or sits near a bound, start again from a floor at 0.6 of the lowest loss (more
     * starts changed no interval on the planted studies) and keep the better fit */
    if (!acceptable(t, obj) || p[0] < 0.1 * lmin || p[2] < 0.01 || p[2] > 3) {
        double E = 0.6 * lmin, a0 = fmin(fmax(f->theta[1], 0.05), 1.0), s[3], la = 0;
        for (int i = 0; i < f->n; i++) la += log(exp(y[i]) - E) + a0 * x[i];
        s[0] = la / f->n, s[1] = a0, s[2] = log(E);
        double o2 = law_fit_logs(x, y, w, f->n, f->delta, 0, s);
        if (isfinite(o2) && (!isfinite(obj) || o2 < obj)) obj = o2, memcpy(t, s, sizeof s);
    }
    if (x != sx) free(x);
    if (!acceptable(t, obj)) return -1;
    law_public(t, p);
    return 0;
}

/* ---------------------------------------------------------------- statistics helpers */

double frontier_noise_scale(Rng *r, int dof) {
    if (dof <= 0) return 1;
    double chi2 = 0;
    if (dof <= 100) {
        for (int i = 0; i < dof; i++) {
            double z = rng_normal(r);
            chi2 += z * z;
        }
    } else { /* Wilson-Hilferty: chi2/dof is nearly normal on a cube-root scale */
        double h = 2.0 / (9 * dof), c = 1 - h + rng_normal(r) * sqrt(h);
        chi2 = dof * fmax(c, 1e-3) * fmax(c, 1e-3) * fmax(c, 1e-3);
    }
    return fmin(sqrt(dof / fmax(chi2, 1e-300)), 100.0); /* past 100x the resample is noise either way */
}

/* P(|T| <= t) for Student's t with nu dof (Abramowitz & Stegun 26.7.3-4, finite sums in cos theta). */
static double t_abs_cdf(double t, int nu) {
    double th = atan(t / sqrt(nu)), s = sin(th), c2 = cos(th) * cos(th);
    if (nu == 1) return 2 * th / PI;
    if (nu % 2) {
        double term = cos(th), sum = term;
        for (int j = 1, pw = 1; pw + 2 <= nu - 2; j++, pw += 2) term *= c2 * (2.0 * j) / (2.0 * j + 1), sum += term;
        return 2 / PI * (th + s * sum);
    }
    double term = 1, sum = 1;
    for (int j = 1, pw = 0; pw + 2 <= nu - 2; j++, pw += 2) term *= c2 * (2.0 * j - 1) / (2.0 * j), sum += term;
    return s * sum;
}

double fit_t_quantile(double p, int dof) {
    if (!(p > 0 && p < 1) || dof < 1) return NAN;
    if (p < 0.5) return -fit_t_quantile(1 - p, dof);
    double target = 2 * p - 1, lo = 0, hi = 1;
    if (dof > 300) { /* the normal quantile, then Cornish-Fisher's corrections in 1/dof */
        while (erf(hi / sqrt(2)) < target) hi *= 2;
        for (int i = 0; i < 200; i++) {
            double mid = 0.5 * (lo + hi);
            if (erf(mid / sqrt(2)) < target) lo = mid;
            else hi = mid;
        }
        double z = 0.5 * (lo + hi), z3 = z * z * z, z5 = z3 * z * z;
        return z + (z3 + z) / (4.0 * dof) + (5 * z5 + 16 * z3 + 3 * z) / (96.0 * dof * dof);
    }
    while (t_abs_cdf(hi, dof) < target && hi < 1e300) hi *= 2;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (t_abs_cdf(mid, dof) < target) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Least squares y = a + b x with a t interval on the slope b at `level`. */
static void slope_t(const double *x, const double *y, int m, int budgets, double level, FitParam *out) {
    out->value = out->lo = out->hi = NAN;
    out->identified = 0;
    if (m < 2 || budgets < 2) return;
    double mx = 0, my = 0, sxx = 0, sxy = 0, rss = 0;
    for (int i = 0; i < m; i++) mx += x[i] / m, my += y[i] / m;
    for (int i = 0; i < m; i++) sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
    if (!(sxx > 0)) return;
    double b = sxy / sxx;
    for (int i = 0; i < m; i++) {
        double r = y[i] - my - b * (x[i] - mx);
        rss += r * r;
    }
    out->value = b;
    if (m < 3) return;
    double se = sqrt(rss / (m - 2) / sxx), q = fit_t_quantile(1 - (1 - level) / 2, m - 2);
    out->lo = b - q * se, out->hi = b + q * se;
    out->identified = budgets >= 3 && out->hi - out->lo < 1.0;
}

/* ---------------------------------------------------------------- local interpolation */

double frontier_local_log_compute(const double *x, const double *y, const double *w, int n, double level, double *lo,
                                  double *hi) {
    /* pool adjacent violators for a non-increasing fit: blocks of (weight, mean x, mean y) */
    double sb[3 * 64], *bw = n <= 64 ? sb : malloc(3 * (size_t)n * sizeof *bw);
    if (!bw) return NAN;
    double *bx = bw + (n <= 64 ? 64 : n), *by = bx + (n <= 64 ? 64 : n), r;
    int nb = 0;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        bw[nb] = wi, bx[nb] = x[i], by[nb] = y[i], nb++;
        while (nb > 1 && by[nb - 1] > by[nb - 2]) { /* a later point higher than an earlier one: pool them */
            double W = bw[nb - 2] + bw[nb - 1];
            bx[nb - 2] = (bw[nb - 2] * bx[nb - 2] + bw[nb - 1] * bx[nb - 1]) / W;
            by[nb - 2] = (bw[nb - 2] * by[nb - 2] + bw[nb - 1] * by[nb - 1]) / W;
            bw[nb - 2] = W, nb--;
        }
    }
    if (lo) *lo = nb ? by[nb - 1] : NAN;
    if (hi) *hi = nb ? by[0] : NAN;
    if (nb == 0 || !isfinite(level)) r = NAN;
    else if (level > by[0]) r = -INFINITY;     /* reached before the first budget: unknown how early */
    else if (level < by[nb - 1]) r = INFINITY; /* never reached within the measured budgets */
    else {
        r = bx[nb - 1];
        for (int j = 0; j + 1 < nb; j++)
            if (level <= by[j] && level >= by[j + 1]) {
                r = bx[j] + (level - by[j]) * (bx[j + 1] - bx[j]) / (by[j + 1] - by[j]);
                break;
            }
    }
    if (bw != sb) free(bw);
    return r;
}

/* ---------------------------------------------------------------- all arms */

/* The law's parameter intervals from the resamples, and what the data cannot pin down. */
static void identify(Frontier *f, double level) {
    LawFit *L = &f->law;
    static const char *names[3] = {"E", "A", "alpha"};
    double p[3];
    law_public(f->theta, p);
    L->identified = f->has_law;
    for (int k = 0; k < 3; k++) {
        L->p[k].value = f->has_law ? p[k] : NAN;
        L->p[k].lo = L->p[k].hi = NAN;
        if (L->boot) fit_interval(L->boot, f->n_boot, 3, k, level, &L->p[k].lo, &L->p[k].hi);
        L->p[k].identified = f->has_law;
    }
    if (!f->has_law) {
        appendf(L->notes, sizeof L->notes, f->n < 2 ? "fewer than 2 budgets: no law" : "the law did not converge");
        return;
    }
    if (!L->enough) {
        for (int k = 0; k < 3; k++) L->p[k].identified = 0;
        L->identified = 0;
        appendf(L->notes, sizeof L->notes,
                "%d budgets for 3 parameters: the law is not identified (needs at least 4)", f->n);
        return;
    }
    if (!isfinite(f->sigma)) {
        for (int k = 0; k < 3; k++) L->p[k].identified = 0;
        L->identified = 0;
        appendf(L->notes, sizeof L->notes, "no noise estimate: no intervals");
        return;
    }
    for (int k = 0; k < 3; k++) {
        FitParam *q = &L->p[k];
        int bad = !isfinite(q->lo) || !isfinite(q->hi);
        if (k == 0 && (q->lo < 0.02 * L->loss_min || q->value < 0.02 * L->loss_min)) bad = 2;
        if (k == 1 && q->lo > 0 && q->hi / q->lo > 1e3) bad = 1;
        if (k == 2 && (q->value < 0.005 || q->value > 5 || q->hi - q->lo > fmax(1.0, 2 * fabs(q->value)))) bad = 1;
        if (!bad) continue;
        q->identified = 0, L->identified = 0;
        if (bad == 2)
            appendf(L->notes, sizeof L->notes, "E not identified (the data show no floor: interval %.3g..%.3g)", q->lo,
                    q->hi);
        else appendf(L->notes, sizeof L->notes, "%s not identified (interval %.3g..%.3g)", names[k], q->lo, q->hi);
    }
    if (f->n_boot && (double)f->n_rejected / f->n_boot > REJECT_MAX) {
        L->identified = 0;
        appendf(L->notes, sizeof L->notes,
                "%.0f%% of resamples could not fit the law (fit failed or alpha at a bound): not identified",
                100.0 * f->n_rejected / f->n_boot);
    }
}

/* The parametric bootstrap of one arm: resample b draws noise around the law (or, without one, around
 * the points) with the shared noise scale b, and refits. */
static int bootstrap(Frontier *f, int arm, const FitOptions *o, Status *st) {
    int nb = o->n_boot, n = f->n;
    f->n_boot = 0;
    if (nb <= 0 || n < 1 || !isfinite(f->sigma)) return 0;
    f->yboot = malloc((size_t)nb * n * sizeof *f->yboot);
    f->law.boot = malloc((size_t)nb * 3 * sizeof *f->law.boot);
    if (!f->yboot || !f->law.boot) return status_fail(st, AP_ENOMEM, "out of memory");
    f->n_boot = f->law.n_boot = nb;
    Rng scale, z;
    rng_seed(&scale, o->seed ^ 0x5ca1ab1e5ca1ab1eULL); /* the same noise scales for every arm: resample b pairs */
    rng_seed(&z, o->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(arm + 1));
    /* draw every resample first, in order, so the refits may run on any number of threads and still
     * give the same numbers */
    for (int b = 0; b < nb; b++) {
        double s = f->sigma * frontier_noise_scale(&scale, f->dof), *y = f->yboot + (size_t)b * n;
        for (int i = 0; i < n; i++)
            y[i] = (f->has_law ? f->fitted[i] : f->pt[i].log_loss) + s * rng_normal(&z) / sqrt(f->pt[i].n_seeds);
    }
    int rejected = 0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : rejected) if (nb >= 64)
    for (int b = 0; b < nb; b++) {
        double *row = f->law.boot + (size_t)b * 3;
        if (!f->has_law || frontier_refit(f, f->yboot + (size_t)b * n, row)) {
            row[0] = row[1] = row[2] = NAN;
            rejected += f->has_law;
        }
    }
    f->n_rejected = rejected;
    return 0;
}

int frontier_fit_arms(const FitPoint *pts, int n, int n_arms, const FitOptions *opt, Frontier *arms, Status *st) {
    FitOptions o;
    if (opt) o = *opt;
    else fit_options_default(&o);
    for (int a = 0; a < n_arms; a++) memset(&arms[a], 0, sizeof arms[a]);
    FitPoint *cp = malloc((size_t)(n ? n : 1) * sizeof *cp), *mine = malloc((size_t)(n ? n : 1) * sizeof *mine);
    if (!cp || !mine) {
        free(cp), free(mine);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    if (n) memcpy(cp, pts, (size_t)n * sizeof *cp);
    int rc = assign_groups(cp, n, st);
    for (int a = 0; a < n_arms && !rc; a++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (cp[i].arm == a) mine[k++] = cp[i];
        if ((rc = frontier_points(mine, k, &arms[a], st))) status_wrap(st, "arm %d", a);
    }
    free(cp), free(mine);
    if (rc) {
        for (int a = 0; a < n_arms; a++) frontier_free(&arms[a]);
        return -1;
    }
    /* noise from seed replicates, pooled over budgets and arms */
    double ss = 0;
    int dof = 0;
    for (int a = 0; a < n_arms; a++) {
        Frontier *f = &arms[a];
        double fs = 0;
        int fd = 0;
        for (int i = 0; i < f->n; i++) {
            const FrontierPoint *q = &f->pt[i];
            for (int s = 0; s < q->n_seeds; s++) {
                double dv = q->seed_log_loss[s] - q->log_loss;
                fs += dv * dv;
            }
            fd += q->n_seeds - 1;
        }
        f->sigma_seed = fd ? sqrt(fs / fd) : NAN, f->dof_seed = fd;
        ss += fs, dof += fd;
    }
    int from_rep = dof > 0;
    double sigma = from_rep ? sqrt(ss / dof) : NAN;
    /* the laws; without replicates the noise comes from their residuals (n - 3 dof per arm), and the
     * fits are redone once with Huber's delta in those units */
    for (int pass = 0; pass < (from_rep ? 1 : 2); pass++) {
        double delta = isfinite(sigma) ? fmax(o.delta, HUBER_K * sigma) : o.delta, rss = 0;
        int rdof = 0;
        for (int a = 0; a < n_arms; a++) {
            double s1;
            fit_point(&arms[a], delta, &s1);
            if (arms[a].has_law && arms[a].n > 3) rss += s1, rdof += arms[a].n - 3;
        }
        if (!from_rep) sigma = rdof ? sqrt(rss / rdof) : NAN, dof = rdof;
    }
    for (int a = 0; a < n_arms; a++) {
        Frontier *f = &arms[a];
        LawFit *L = &f->law;
        L->law = FIT_FRONTIER, L->n_points = f->n, L->n_params = 3, L->enough = f->n > 3;
        L->loss_min = L->x_min = INFINITY, L->loss_max = L->x_max = -INFINITY;
        for (int i = 0; i < f->n; i++) {
            L->loss_min = fmin(L->loss_min, f->pt[i].loss), L->loss_max = fmax(L->loss_max, f->pt[i].loss);
            L->x_min = fmin(L->x_min, f->pt[i].flops), L->x_max = fmax(L->x_max, f->pt[i].flops);
        }
        f->sigma0 = sigma, f->dof = dof, f->from_replicates = from_rep, f->lof = 1;
        if (f->has_law && f->n > 3 && isfinite(sigma) && sigma > 0) {
            double s1 = 0;
            for (int i = 0; i < f->n; i++) {
                double r = f->pt[i].log_loss - f->fitted[i];
                s1 += f->pt[i].n_seeds * r * r;
            }
            f->chi2_red = s1 / (sigma * sigma * (f->n - 3));
            if (from_rep && f->chi2_red > 1) f->lof = f->chi2_red;
        }
        f->sigma = sigma * sqrt(f->lof);
        if (!isfinite(sigma))
            appendf(f->notes, sizeof f->notes, "no seed replicates and too few budgets for residuals: noise unknown");
        else
            appendf(f->notes, sizeof f->notes, "noise %.3g (sd of one seed's frontier ln loss, %d dof) from %s", sigma,
                    dof, from_rep ? "seed replicates" : "the laws' residuals (no seed replicates)");
        if (f->lof > 1)
            appendf(f->notes, sizeof f->notes,
                    "lack of fit: residuals %.2gx the noise variance (reduced chi-square), noise inflated by it", f->lof);
        if ((rc = bootstrap(f, a, &o, st))) {
            for (int b = 0; b < n_arms; b++) frontier_free(&arms[b]);
            return -1;
        }
        if (f->n_rejected)
            appendf(f->notes, sizeof f->notes, "%d of %d resamples rejected (fit failed or alpha at a bound)",
                    f->n_rejected, f->n_boot);
        identify(f, o.level);
        /* N* ~ C^a and D* ~ C^b through every interior vertex */
        size_t cap = (size_t)(f->n ? f->n : 1) * FRONTIER_MAX_SEEDS;
        double *xn = malloc(4 * cap * sizeof *xn), *yn = xn + cap, *xd = yn + cap, *yd = xd + cap;
        if (!xn) {
            for (int b = 0; b < n_arms; b++) frontier_free(&arms[b]);
            return status_fail(st, AP_ENOMEM, "out of memory");
        }
        int mn = 0, md = 0, bn = 0, bd = 0;
        for (int i = 0; i < f->n; i++) {
            const FrontierPoint *q = &f->pt[i];
            int hn = 0, hd = 0;
            for (int s = 0; s < q->n_seeds; s++) {
                if (isfinite(q->seed_n_opt[s])) xn[mn] = log(q->flops), yn[mn++] = log(q->seed_n_opt[s]), hn = 1;
                if (isfinite(q->seed_d_opt[s])) xd[md] = log(q->flops), yd[md++] = log(q->seed_d_opt[s]), hd = 1;
            }
            bn += hn, bd += hd;
        }
        f->n_vertices = mn;
        slope_t(xn, yn, mn, bn, o.level, &f->a_exp);
        slope_t(xd, yd, md, bd, o.level, &f->b_exp);
        free(xn);
        if (f->n && bn < 3)
            appendf(f->notes, sizeof f->notes, "%d budget%s with an interior vertex: N*(C), D*(C) not identified", bn,
                    bn == 1 ? "" : "s");
    }
    return 0;
}

void frontier_free(Frontier *f) {
    free(f->yboot), free(f->pt), free(f->fitted);
    f->yboot = NULL, f->pt = NULL, f->fitted = NULL;
    law_fit_free(&f->law);
}

/* ---------------------------------------------------------------- validated extrapolation */

int frontier_holdout(const FitPoint *pts, int n, int n_arms, int k, const Frontier *full, const FitOptions *opt,
                     Holdout *out, Status *st) {
    FitOptions o;
    if (opt) o = *opt;
    else fit_options_default(&o);
    if (k < 1 || k > HOLDOUT_MAX) return status_fail(st, AP_EINVAL, "holdout: hold out 1..%d budgets, not %d", HOLDOUT_MAX, k);
    memset(out, 0, (size_t)n_arms * sizeof *out);
    FitPoint *kept = malloc((size_t)(n > 0 ? n : 1) * sizeof *kept);
    Frontier *fr = calloc((size_t)(n_arms > 0 ? n_arms : 1), sizeof *fr);
    if (!kept || !fr) {
        free(kept), free(fr);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    /* the points of budgets an arm holds out go; groups as frontier_fit_arms numbers them */
    FitPoint *cp = malloc((size_t)(n > 0 ? n : 1) * sizeof *cp);
    int m = 0, rc = cp ? 0 : status_fail(st, AP_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(cp, pts, (size_t)n * sizeof *cp);
        rc = assign_groups(cp, n, st);
    }
    for (int i = 0; i < n && !rc; i++) {
        const Frontier *f = &full[cp[i].arm];
        int held = 0;
        for (int j = f->n - k; j < f->n && !held; j++) held = j >= 0 && f->pt[j].group == cp[i].group;
        if (!held) kept[m++] = cp[i];
    }
    free(cp);
    if (!rc) rc = frontier_fit_arms(kept, m, n_arms, &o, fr, st);
    free(kept);
    if (rc) {
        free(fr);
        return -1;
    }
    Rng z;
    rng_seed(&z, o.seed ^ 0x401d0a7ULL);
    double *col = malloc((size_t)(o.n_boot > 0 ? o.n_boot : 1) * sizeof *col);
    for (int a = 0; a < n_arms; a++) {
        const Frontier *f = &full[a], *g = &fr[a];
        Holdout *h = &out[a];
        if (f->n - k < 3) {
            snprintf(h->why, sizeof h->why, "%d budgets: too few to hold out %d and fit a law on the rest", f->n, k);
            continue;
        }
        if (!g->has_law || !g->law.boot || !col) {
            snprintf(h->why, sizeof h->why, "no law on the other %d budgets", g->n);
            continue;
        }
        h->k = k;
        for (int j = 0; j < k; j++) {
            const FrontierPoint *q = &f->pt[f->n - k + j];
            double p[3] = {g->law.p[0].value, g->law.p[1].value, g->law.p[2].value};
            int mcol = 0;
            for (int b = 0; b < g->n_boot; b++) {
                const double *pb = g->law.boot + (size_t)b * 3;
                if (!isfinite(pb[0])) continue;
                col[mcol++] = log(frontier_loss(pb, q->flops)) + g->sigma * rng_normal(&z) / sqrt(q->n_seeds);
            }
            h->flops[j] = q->flops, h->observed[j] = q->loss, h->predicted[j] = frontier_loss(p, q->flops);
            h->error[j] = q->loss / h->predicted[j] - 1;
            fit_interval(col, mcol, 1, 0, o.level, &h->lo[j], &h->hi[j]);
            h->lo[j] = exp(h->lo[j]), h->hi[j] = exp(h->hi[j]);
            h->inside[j] = q->loss >= h->lo[j] && q->loss <= h->hi[j];
            h->n_inside += h->inside[j];
        }
        if (!g->law.identified) snprintf(h->why, sizeof h->why, "the law on the other budgets is not identified");
    }
    free(col);
    for (int a = 0; a < n_arms; a++) frontier_free(&fr[a]);
    free(fr);
    return 0;
}
