/* lbfgs.c - L-BFGS with backtracking line search (see lbfgs.h). */
#include "fit/lbfgs.h"

#include <math.h>
#include <string.h>

#define M 10

static double dot(int n, const double *a, const double *b) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

LbfgsResult lbfgs_minimize(int n, double *x, lbfgs_fn fn, void *ctx, const LbfgsOptions *o) {
    LbfgsOptions opt = {500, 1e-9, 1e-14};
    if (o) opt = *o;
    double g[LBFGS_MAX_N], d[LBFGS_MAX_N], xn[LBFGS_MAX_N], gn[LBFGS_MAX_N];
    double s[M][LBFGS_MAX_N], y[M][LBFGS_MAX_N], rho[M], alpha[M], hist[5];
    int k = 0, count = 0, head = 0;
    LbfgsResult r = {0, 0, 0};
    double f = fn(x, g, ctx);
    for (int i = 0; i < 5; i++) hist[i] = f;
    for (int it = 0; it < opt.max_iter; it++) {
        r.iterations = it;
        double gmax = 0;
        for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        if (!isfinite(f)) break;
        if (gmax <= opt.gtol * fmax(1.0, fabs(f))) {
            r.converged = 1;
            break;
        }
        /* two-loop recursion: d = -H g */
        for (int i = 0; i < n; i++) d[i] = -g[i];
        for (int j = 0; j < count; j++) {
            int idx = (head - 1 - j + M) % M;
            alpha[idx] = rho[idx] * dot(n, s[idx], d);
            for (int i = 0; i < n; i++) d[i] -= alpha[idx] * y[idx][i];
        }
        if (count > 0) {
            int last = (head - 1 + M) % M;
            double gamma = dot(n, s[last], y[last]) / dot(n, y[last], y[last]);
            for (int i = 0; i < n; i++) d[i] *= gamma;
        } else {
            double gn2 = sqrt(dot(n, g, g));
            for (int i = 0; i < n; i++) d[i] /= fmax(gn2, 1e-300); /* first step: unit length */
        }
        for (int j = count - 1; j >= 0; j--) {
            int idx = (head - 1 - j + M) % M;
            double beta = rho[idx] * dot(n, y[idx], d);
            for (int i = 0; i < n; i++) d[i] += s[idx][i] * (alpha[idx] - beta);
        }
        double slope = dot(n, g, d);
        if (slope >= 0) { /* not a descent direction: restart from steepest descent */
            count = 0;
            for (int i = 0; i < n; i++) d[i] = -g[i];
            slope = -dot(n, g, g);
        }
        /* backtracking line search (Armijo, c1 = 1e-4) */
        double step = 1.0, fn_new = 0;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (int i = 0; i < n; i++) xn[i] = x[i] + step * d[i];
            fn_new = fn(xn, gn, ctx);
            if (isfinite(fn_new) && fn_new <= f + 1e-4 * step * slope) {
                ok = 1;
                break;
            }
            step *= 0.5;
        }
        if (!ok) {
            r.converged = gmax <= 1e-6 * fmax(1.0, fabs(f)); /* stuck at (numerical) optimum */
            break;
        }
        double sy = 0;
        for (int i = 0; i < n; i++) {
            s[head][i] = xn[i] - x[i];
            y[head][i] = gn[i] - g[i];
        }
        sy = dot(n, s[head], y[head]);
        if (sy > 1e-300) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % M;
            if (count < M) count++;
        }
        memcpy(x, xn, (size_t)n * sizeof *x);
        memcpy(g, gn, (size_t)n * sizeof *g);
        f = fn_new;
        hist[k % 5] = f;
        k++;
        if (k >= 5) {
            double old = hist[k % 5];
            if (old - f <= opt.ftol * fmax(1.0, fabs(f))) {
                r.converged = 1;
                break;
            }
        }
    }
    r.f = f;
    return r;
}
