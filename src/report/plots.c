/* plots.c - the report's figures (see plots.h). */
#include "report/plots.h"

#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_MAX_SERIES 64 /* legend entries (arms, budgets) in one plot: more could not be read anyway */

/* The finished main runs of arm a (plateau runs too when plateau is set), as (FLOPs, test bpb). */
static int arm_runs(const Results *r, int a, int plateau, double *xs, double *ys, int max) {
    int n = 0;
    for (int i = 0; i < r->n_runs && n < max; i++) {
        const RunRow *x = &r->runs[i];
        if (x->arm_id != r->arms[a].row.id || x->kind != RUN_MAIN || x->status != RUN_DONE || isnan(x->test_bpb))
            continue;
        int flat = isfinite(x->unigram_bpb) && x->test_bpb >= x->unigram_bpb * (1 - r->plateau_margin);
        if (flat == plateau) xs[n] = x->flops, ys[n++] = x->test_bpb;
    }
    return n;
}

void plot_loss_vs_compute(const Results *r, StrBuf *b) {
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->n_runs; i++) {
        const RunRow *x = &r->runs[i];
        if (x->kind != RUN_MAIN || x->status != RUN_DONE || isnan(x->test_bpb)) continue;
        x0 = fmin(x0, x->flops), x1 = fmax(x1, x->flops);
        y0 = fmin(y0, x->test_bpb), y1 = fmax(y1, x->test_bpb);
    }
    if (!isfinite(x0)) return;
    Plot p;
    plot_begin(&p, b, "plot-loss", "Held-out loss against training compute", "training FLOPs (exact)",
               "test bits per byte", x0 / 1.5, x1 * 1.5, y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1, 0);
    const char *names[PLOT_MAX_SERIES], *colors[PLOT_MAX_SERIES];
    int nn = 0, cap = r->n_runs + 1; /* a frontier has at most one point per run */
    double *xs = malloc((size_t)cap * sizeof *xs), *ys = malloc((size_t)cap * sizeof *ys);
    for (int a = 0; xs && ys && a < r->n_arms && nn < PLOT_MAX_SERIES; a++) {
        const Frontier *f = &r->arms[a].fr;
        int n = arm_runs(r, a, 0, xs, ys, cap);
        plot_points(&p, xs, ys, n, plot_color(a), r->arms[a].row.name);
        n = arm_runs(r, a, 1, xs, ys, cap);
        plot_markers(&p, xs, ys, n, plot_color(a), r->arms[a].row.name, MARK_HOLLOW);
        for (int k = 0; k < f->n; k++) xs[k] = f->pt[k].flops, ys[k] = f->pt[k].loss;
        plot_markers(&p, xs, ys, f->n, plot_color(a), r->arms[a].row.name, MARK_FRONTIER);
        if (f->has_law) {
            double fx[80], fy[80], prm[3] = {f->law.p[0].value, f->law.p[1].value, f->law.p[2].value};
            for (int k = 0; k < 80; k++) {
                fx[k] = x0 / 1.5 * pow(2.25 * x1 / x0, k / 79.0);
                fy[k] = frontier_loss(prm, fx[k]);
            }
            plot_line(&p, fx, fy, 80, plot_color(a), !f->law.identified);
        }
        names[nn] = r->arms[a].row.name, colors[nn++] = plot_color(a);
    }
    free(xs), free(ys);
    plot_legend(&p, names, colors, nn);
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
    const char *names[PLOT_MAX_SERIES], *colors[PLOT_MAX_SERIES];
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

void plot_loss_vs_kv(const Results *r, StrBuf *b, const int *arms, int n) {
    enum { MAXA = 8 };
    int nb = results_n_budgets(r), a_idx[MAXA], na = 0;
    for (int i = 0; i < n && na < MAXA; i++)
        if (arms[i] >= 0) a_idx[na++] = arms[i];
    if (nb < 1 || na < 2) return;
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    ArmCost *cost = calloc((size_t)(nb * na), sizeof *cost);
    if (!cost) return;
    for (int k = 0; k < nb; k++)
        for (int j = 0; j < na; j++) {
            ArmCost *c = &cost[k * na + j];
            if (results_arm_cost(r, a_idx[j], k, c) || !(c->kv_bytes > 0)) {
                c->run = -1;
                continue;
            }
            x0 = fmin(x0, c->kv_bytes), x1 = fmax(x1, c->kv_bytes), y0 = fmin(y0, c->loss), y1 = fmax(y1, c->loss);
        }
    if (isfinite(x0)) {
        Plot p;
        double pad = 0.08 * (y1 - y0 + 0.02);
        plot_begin(&p, b, "plot-kv", "Loss against KV cache per token, at each budget",
                   "KV cache bytes per token at inference (fp32, all layers)", "test bits per byte (best size)",
                   x0 / 1.5, x1 * 1.5, y0 - pad, y1 + pad, 1, 0);
        for (int k = 0; k < nb; k++) { /* one budget's arms, ordered by their cache */
            double xs[MAXA], ys[MAXA];
            int m = 0;
            for (int j = 0; j < na; j++)
                if (cost[k * na + j].run >= 0) xs[m] = cost[k * na + j].kv_bytes, ys[m++] = cost[k * na + j].loss;
            for (int i = 1; i < m; i++)
                for (int q = i; q > 0 && xs[q - 1] > xs[q]; q--) {
                    double t = xs[q]; xs[q] = xs[q - 1], xs[q - 1] = t;
                    t = ys[q]; ys[q] = ys[q - 1], ys[q - 1] = t;
                }
            plot_line(&p, xs, ys, m, "#999", 1);
        }
        const char *names[MAXA], *colors[MAXA];
        for (int j = 0; j < na; j++) {
            double xs[PLOT_MAX_SERIES], ys[PLOT_MAX_SERIES];
            int m = 0;
            for (int k = 0; k < nb && m < PLOT_MAX_SERIES; k++)
                if (cost[k * na + j].run >= 0) xs[m] = cost[k * na + j].kv_bytes, ys[m++] = cost[k * na + j].loss;
            names[j] = r->arms[a_idx[j]].row.name, colors[j] = plot_color(a_idx[j]);
            plot_points(&p, xs, ys, m, colors[j], names[j]);
        }
        plot_legend(&p, names, colors, na);
        plot_end(&p);
    }
    free(cost);
}

void plot_isoflop(const Results *r, StrBuf *b, int a) {
    const ResultArm *arm = &r->arms[a];
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->ps.n; i++)
        if (r->ps.p[i].arm == a) {
            x0 = fmin(x0, r->ps.p[i].params), x1 = fmax(x1, r->ps.p[i].params);
            y0 = fmin(y0, r->ps.p[i].loss), y1 = fmax(y1, r->ps.p[i].loss);
        }
    if (!isfinite(x0)) return;
    char title[160], id[96];
    snprintf(title, sizeof title, "IsoFLOP profiles of %s: loss against size at each budget", arm->row.name);
    snprintf(id, sizeof id, "plot-isoflop-%d", a);
    Plot p;
    plot_begin(&p, b, id, title, "parameters N (non-embedding, no head)", "test bits per byte", x0 / 1.3, x1 * 1.3,
               y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1, 0);
    const char *names[PLOT_MAX_SERIES], *colors[PLOT_MAX_SERIES];
    char labels[PLOT_MAX_SERIES][32];
    int ng = 0;
    for (int k = 0; k < arm->fr.n && ng < 10; k++) {
        const FrontierPoint *q = &arm->fr.pt[k];
        double xs[512], ys[512], lx[512];
        int n = 0;
        for (int i = 0; i < r->ps.n && n < 512; i++)
            if (r->ps.p[i].arm == a && r->ps.p[i].group == q->group)
                xs[n] = r->ps.p[i].params, lx[n] = log(xs[n]), ys[n++] = r->ps.p[i].loss;
        if (!n) continue;
        const char *col = plot_color(ng);
        plot_points(&p, xs, ys, n, col, "budget");
        double c[3]; /* the budget's parabola over every seed, for the eye; the frontier uses each seed's */
        if (q->n_sizes >= 3 && fit_parabola(lx, ys, n, c) == 0 && c[2] > 0) {
            double fx[60], fy[60], lo = log(x0 / 1.3), hi = log(x1 * 1.3);
            for (int j = 0; j < 60; j++) {
                double l = lo + (hi - lo) * j / 59.0;
                fx[j] = exp(l), fy[j] = c[0] + c[1] * l + c[2] * l * l;
            }
            plot_line(&p, fx, fy, 60, col, q->n_interior == 0);
        }
        if (isfinite(q->n_opt)) plot_markers(&p, &q->n_opt, &q->loss, 1, col, "optimum", MARK_FRONTIER);
        snprintf(labels[ng], sizeof labels[ng], "%.2g FLOPs", q->flops);
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
