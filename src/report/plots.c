/* plots.c - the report's figures (see plots.h). */
#include "report/plots.h"

#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void plot_loss_vs_compute(const Results *r, StrBuf *b) {
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->ps.n; i++) {
        x0 = fmin(x0, r->ps.p[i].flops), x1 = fmax(x1, r->ps.p[i].flops);
        y0 = fmin(y0, r->ps.p[i].loss), y1 = fmax(y1, r->ps.p[i].loss);
    }
    if (!isfinite(x0)) return;
    Plot p;
    plot_begin(&p, b, "plot-loss", "Held-out loss against training compute", "training FLOPs (exact)",
               "held-out bits per byte", x0 / 1.5, x1 * 1.5, y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1,
               0);
    const char *names[POINTS_MAX_ARMS], *colors[POINTS_MAX_ARMS];
    for (int a = 0; a < r->n_arms; a++) {
        double xs[1024], ys[1024];
        int n = 0;
        for (int i = 0; i < r->ps.n && n < 1024; i++)
            if (r->ps.p[i].arm == a) xs[n] = r->ps.p[i].flops, ys[n++] = r->ps.p[i].loss;
        plot_points(&p, xs, ys, n, plot_color(a), r->arms[a].row.name);
        if (r->arms[a].has_fit) {
            double fx[80], fy[80], prm[3] = {r->arms[a].fit.p[0].value, r->arms[a].fit.p[1].value, r->arms[a].fit.p[2].value};
            for (int k = 0; k < 80; k++) {
                fx[k] = x0 / 1.5 * pow(2.25 * x1 / x0, k / 79.0);
                fy[k] = frontier_loss(prm, fx[k]);
            }
            plot_line(&p, fx, fy, 80, plot_color(a), !r->arms[a].fit.identified);
        }
        names[a] = r->arms[a].row.name, colors[a] = plot_color(a);
    }
    plot_legend(&p, names, colors, r->n_arms);
    plot_end(&p);
}

void plot_ceg_vs_compute(const Results *r, StrBuf *b) {
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    int any = 0;
    for (int i = 0; i < r->n_pairs; i++) {
        if (!r->pairs[i].ok || r->pairs[i].ref != 0) continue;
        for (int k = 0; k < r->pairs[i].c.n; k++) {
            const CegLevel *v = &r->pairs[i].c.lv[k];
            if (!isfinite(v->c_ref) || !(v->ceg > 0)) continue;
            x0 = fmin(x0, v->c_ref), x1 = fmax(x1, v->c_ref);
            y0 = fmin(y0, isfinite(v->lo) && v->lo > 0 ? v->lo : v->ceg);
            y1 = fmax(y1, isfinite(v->hi) ? v->hi : v->ceg);
            any = 1;
        }
    }
    if (!any) return;
    y0 = fmax(fmin(y0, 0.8), 1e-3), y1 = fmin(fmax(y1, 1.25), 1e4);
    char title[160];
    snprintf(title, sizeof title, "Compute-equivalent gain over %s", r->arms[0].row.name);
    Plot p;
    char xl[128];
    snprintf(xl, sizeof xl, "FLOPs %s needs to reach the loss", r->arms[0].row.name);
    plot_begin(&p, b, "plot-ceg", title, xl, "CEG (x less compute), 95% band", x0 / 1.5, x1 * 1.5, y0 / 1.2, y1 * 1.2, 1, 1);
    plot_hline(&p, 1.0, "#444", "no gain");
    const char *names[POINTS_MAX_ARMS], *colors[POINTS_MAX_ARMS];
    int nn = 0;
    for (int i = 0; i < r->n_pairs; i++) {
        const ResultPair *pr = &r->pairs[i];
        if (!pr->ok || pr->ref != 0) continue;
        double xs[CEG_MAX_LEVELS], ys[CEG_MAX_LEVELS], lo[CEG_MAX_LEVELS], hi[CEG_MAX_LEVELS];
        for (int k = 0; k < pr->c.n; k++) {
            xs[k] = pr->c.lv[k].c_ref, ys[k] = pr->c.lv[k].ceg;
            lo[k] = isfinite(pr->c.lv[k].lo) ? pr->c.lv[k].lo : y0;
            hi[k] = isfinite(pr->c.lv[k].hi) ? pr->c.lv[k].hi : y1;
        }
        const char *col = plot_color(pr->cand);
        plot_band(&p, xs, lo, hi, pr->c.n, col);
        plot_line(&p, xs, ys, pr->c.n, col, !pr->c.determined);
        plot_points(&p, xs, ys, pr->c.n, col, r->arms[pr->cand].row.name);
        names[nn] = r->arms[pr->cand].row.name, colors[nn++] = col;
    }
    plot_legend(&p, names, colors, nn);
    plot_end(&p);
}

void plot_isoflop(const Results *r, StrBuf *b, int a) {
    const ResultArm *arm = &r->arms[a];
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->ps.n; i++)
        if (r->ps.p[i].arm == a) {
            x0 = fmin(x0, r->ps.p[i].params), x1 = fmax(x1, r->ps.p[i].params);
            y0 = fmin(y0, r->ps.p[i].loss), y1 = fmax(y1, r->ps.p[i].loss);
        }
    char title[160], id[96];
    snprintf(title, sizeof title, "IsoFLOP profiles of %s (Chinchilla approach 2)", arm->row.name);
    snprintf(id, sizeof id, "plot-isoflop-%d", a);
    Plot p;
    plot_begin(&p, b, id, title, "parameters N (non-embedding)", "held-out bits per byte", x0 / 1.5, x1 * 1.5,
               y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1, 0);
    const char *names[FIT_MAX_GROUPS], *colors[FIT_MAX_GROUPS];
    char labels[FIT_MAX_GROUPS][32];
    int ng = 0;
    for (int g = 0; g < arm->iso.n_groups && ng < 8; g++) {
        double xs[512], ys[512];
        int n = 0;
        for (int i = 0; i < r->ps.n && n < 512; i++)
            if (r->ps.p[i].arm == a && r->ps.p[i].group == g) xs[n] = r->ps.p[i].params, ys[n++] = r->ps.p[i].loss;
        if (!n) continue;
        const char *col = plot_color(ng);
        plot_points(&p, xs, ys, n, col, "budget");
        if (arm->iso.g[g].c2 > 0) {
            double fx[60], fy[60];
            for (int k = 0; k < 60; k++) {
                fx[k] = x0 / 1.3 * pow(1.69 * x1 / x0, k / 59.0);
                double lx = log(fx[k]);
                fy[k] = arm->iso.g[g].c0 + arm->iso.g[g].c1 * lx + arm->iso.g[g].c2 * lx * lx;
            }
            plot_line(&p, fx, fy, 60, col, !arm->iso.g[g].ok);
        }
        snprintf(labels[ng], sizeof labels[ng], "%.2g FLOPs", arm->iso.g[g].budget);
        names[ng] = labels[ng], colors[ng] = col, ng++;
    }
    plot_legend(&p, names, colors, ng);
    plot_end(&p);
}

void plot_ablation(const ResultAblation *ab, StrBuf *b) {
    const char *labels[2 * ABLATION_MAX + 2], *colors[2 * ABLATION_MAX + 2];
    char names[2 * ABLATION_MAX + 2][80];
    double v[2 * ABLATION_MAX + 2], lo[2 * ABLATION_MAX + 2], hi[2 * ABLATION_MAX + 2];
    int n = 0;
    for (int i = 0; i < ab->s.n; i++) {
        snprintf(names[n], sizeof names[0], "+%s (one at a time)", ab->sw[i]);
        labels[n] = names[n], colors[n] = plot_color(0), v[n] = ab->s.single[i][0], lo[n] = ab->s.single[i][1],
        hi[n++] = ab->s.single[i][2];
        snprintf(names[n], sizeof names[0], "+%s (leave one out)", ab->sw[i]);
        labels[n] = names[n], colors[n] = plot_color(1), v[n] = ab->s.loo[i][0], lo[n] = ab->s.loo[i][1],
        hi[n++] = ab->s.loo[i][2];
    }
    snprintf(names[n], sizeof names[0], "whole package");
    labels[n] = names[n], colors[n] = plot_color(2), v[n] = ab->s.package[0], lo[n] = ab->s.package[1],
    hi[n++] = ab->s.package[2];
    char id[96];
    snprintf(id, sizeof id, "plot-ablation-%s", ab->name);
    plot_bars(b, id, "Compute-equivalent gain of each switch", "CEG (x less compute), 95% interval", labels, v, lo, hi,
              colors, n);
}
