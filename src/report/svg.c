/* svg.c - inline SVG plots (see svg.h). */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>

/* Okabe & Ito's palette, readable with the common colour-vision deficiencies. */
static const char *const PALETTE[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                                      "#F0E442"};

const char *plot_color(int i) { return PALETTE[((i % 8) + 8) % 8]; }

static double px(const Plot *p, double x) {
    double t = p->logx ? (log10(x) - log10(p->x0)) / (log10(p->x1) - log10(p->x0)) : (x - p->x0) / (p->x1 - p->x0);
    return p->left + t * (p->width - p->left - p->right);
}

static double py(const Plot *p, double y) {
    double t = p->logy ? (log10(y) - log10(p->y0)) / (log10(p->y1) - log10(p->y0)) : (y - p->y0) / (p->y1 - p->y0);
    return p->height - p->bottom - t * (p->height - p->top - p->bottom);
}

static int inside(const Plot *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->logx || x > 0) && (!p->logy || y > 0);
}

/* Tick values: decades (and 2, 5 between them when the range is short) or 1-2-5 steps. */
static int ticks(double a, double b, int logscale, double *out, int max) {
    int n = 0;
    if (logscale) {
        double span = log10(b) - log10(a);
        for (int e = (int)floor(log10(a)); e <= (int)ceil(log10(b)) && n < max; e++)
            for (int m = 1; m <= 9 && n < max; m++) {
                int show = m == 1 || (span < 2.5 && (m == 2 || m == 5)) || (span < 1 && (m == 3 || m == 7));
                if (!show) continue;
                double v = m * pow(10, e);
                if (v >= a * (1 - 1e-9) && v <= b * (1 + 1e-9)) out[n++] = v;
            }
        return n;
    }
    double raw = (b - a) / 5, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    for (double v = ceil(a / step) * step; v <= b + 1e-9 * step && n < max; v += step) out[n++] = v;
    return n;
}

static void fmt_tick(char *buf, size_t size, double v, int logscale) {
    if (logscale && (v >= 1e4 || v < 1e-2)) { /* 2e10, not 2e+10 */
        int e = (int)floor(log10(v) + 1e-9);
        double m = v / pow(10, e);
        if (fabs(m - 1) < 1e-9)
            snprintf(buf, size, "1e%d", e);
        else
            snprintf(buf, size, "%.2ge%d", m, e);
    } else {
        snprintf(buf, size, "%.3g", v);
    }
}

void plot_begin(Plot *p, StrBuf *out, const char *id, const char *title, const char *xlabel, const char *ylabel,
                double x0, double x1, double y0, double y1, int logx, int logy) {
    *p = (Plot){out, 640, 400, 70, 150, 36, 52, x0, x1, y0, y1, logx, logy};
    if (!(p->x1 > p->x0)) p->x1 = p->x0 * (logx ? 10 : 1) + 1;
    if (!(p->y1 > p->y0)) p->y1 = p->y0 * (logy ? 10 : 1) + 1;
    sb_printf(out, "<svg id=\"%s\" class=\"plot\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
                   "xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"12\">\n",
              id, p->width, p->height, p->width, p->height);
    sb_puts(out, "<title>");
    sb_html(out, title);
    sb_puts(out, "</title>\n");
    sb_printf(out, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", p->width / 2 - 60 - (int)p->right / 2);
    sb_html(out, title);
    sb_puts(out, "</text>\n");
    double t[64];
    int n = ticks(p->x0, p->x1, logx, t, 64);
    char lab[32];
    for (int i = 0; i < n; i++) {
        double x = px(p, t[i]);
        fmt_tick(lab, sizeof lab, t[i], logx);
        sb_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", x, p->top, x,
                  p->height - p->bottom);
        sb_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, p->height - p->bottom + 16,
                  lab);
    }
    n = ylabel[0] ? ticks(p->y0, p->y1, logy, t, 64) : 0; /* no y axis: bar charts label their rows */
    for (int i = 0; i < n; i++) {
        double y = py(p, t[i]);
        fmt_tick(lab, sizeof lab, t[i], logy);
        sb_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", p->left, y,
                  p->width - p->right, y);
        sb_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", p->left - 6, y + 4, lab);
    }
    sb_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", p->left,
              p->top, p->width - p->left - p->right, p->height - p->top - p->bottom);
    sb_printf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", p->left + (p->width - p->left - p->right) / 2,
              p->height - 10);
    sb_html(out, xlabel);
    sb_printf(out, "</text>\n<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">",
              p->top + (p->height - p->top - p->bottom) / 2);
    sb_html(out, ylabel);
    sb_puts(out, "</text>\n");
}

void plot_markers(Plot *p, const double *x, const double *y, int n, const char *color, const char *label, int style) {
    sb_printf(p->out, "<g class=\"%s\" data-series=\"", style == MARK_FRONTIER ? "frontier" : "plateau");
    sb_html(p->out, label ? label : "");
    sb_puts(p->out, "\">");
    for (int i = 0; i < n; i++) {
        if (!inside(p, x[i], y[i])) continue;
        if (style == MARK_FRONTIER) /* a diamond, outlined, over the runs it summarises */
            sb_printf(p->out, "<path d=\"M%.1f %.1fl6 6l-6 6l-6 -6z\" fill=\"%s\" stroke=\"#000\"/>", px(p, x[i]),
                      py(p, y[i]) - 6, color);
        else /* a run left out: hollow */
            sb_printf(p->out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"none\" stroke=\"%s\"/>", px(p, x[i]),
                      py(p, y[i]), color);
    }
    sb_puts(p->out, "</g>\n");
}

void plot_points(Plot *p, const double *x, const double *y, int n, const char *color, const char *label) {
    sb_printf(p->out, "<g class=\"points\" data-series=\"");
    sb_html(p->out, label ? label : "");
    sb_puts(p->out, "\">");
    for (int i = 0; i < n; i++)
        if (inside(p, x[i], y[i]))
            sb_printf(p->out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.8\"/>", px(p, x[i]),
                      py(p, y[i]), color);
    sb_puts(p->out, "</g>\n");
}

void plot_line(Plot *p, const double *x, const double *y, int n, const char *color, int dashed) {
    sb_printf(p->out, "<polyline class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
              dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0; i < n; i++)
        if (inside(p, x[i], y[i])) sb_printf(p->out, "%.1f,%.1f ", px(p, x[i]), py(p, y[i]));
    sb_puts(p->out, "\"/>\n");
}

void plot_band(Plot *p, const double *x, const double *lo, const double *hi, int n, const char *color) {
    sb_printf(p->out, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", color);
    for (int i = 0; i < n; i++)
        if (inside(p, x[i], hi[i])) sb_printf(p->out, "%.1f,%.1f ", px(p, x[i]), py(p, fmin(hi[i], p->y1)));
    for (int i = n - 1; i >= 0; i--)
        if (inside(p, x[i], lo[i])) sb_printf(p->out, "%.1f,%.1f ", px(p, x[i]), py(p, fmax(lo[i], p->y0)));
    sb_puts(p->out, "\"/>\n");
}

void plot_hline(Plot *p, double y, const char *color, const char *label) {
    if (y < p->y0 || y > p->y1) return;
    double yy = py(p, y);
    sb_printf(p->out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"3 3\"/>",
              p->left, yy, p->width - p->right, yy, color);
    if (label) {
        sb_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">", p->left + 4, yy - 4, color);
        sb_html(p->out, label);
        sb_puts(p->out, "</text>");
    }
    sb_puts(p->out, "\n");
}

void plot_legend(Plot *p, const char *const *names, const char *const *colors, int n) {
    double x = p->width - p->right + 12, y = p->top + 8;
    for (int i = 0; i < n; i++) {
        sb_printf(p->out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y + 18 * i, colors[i]);
        sb_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\">", x + 18, y + 18 * i + 10);
        sb_html(p->out, names[i]);
        sb_puts(p->out, "</text>\n");
    }
}

void plot_end(Plot *p) { sb_puts(p->out, "</svg>\n"); }

void plot_bars(StrBuf *out, const char *id, const char *title, const char *xlabel, const char *const *labels,
               const double *value, const double *lo, const double *hi, const char *const *colors, int n) {
    double x0 = 1, x1 = 1;
    for (int i = 0; i < n; i++) {
        double a = isfinite(lo[i]) && lo[i] > 0 ? lo[i] : value[i], b = isfinite(hi[i]) ? hi[i] : value[i];
        if (a > 0) x0 = fmin(x0, a);
        if (b > 0) x1 = fmax(x1, b);
    }
    x0 = fmax(x0 / 1.3, 1e-3), x1 = fmin(x1 * 1.3, 1e4);
    Plot p;
    int rowh = 22;
    plot_begin(&p, out, id, title, xlabel, "", x0, x1, 0, 1, 1, 0);
    /* plot_begin sized the frame for a generic plot: bars use its area and draw their own rows */
    double top = p.top + 6, h = (p.height - p.top - p.bottom - 12) / (n > 0 ? n : 1);
    if (h > rowh) h = rowh;
    double base = px(&p, 1.0);
    sb_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", base, p.top, base,
              p.height - p.bottom);
    for (int i = 0; i < n; i++) {
        double y = top + i * h, v = value[i] > 0 ? px(&p, fmin(fmax(value[i], x0), x1)) : base;
        sb_printf(out, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                       "fill-opacity=\"0.75\"/>",
                  fmin(base, v), y + 2, fabs(v - base), h - 4, colors[i]);
        if (isfinite(lo[i]) && isfinite(hi[i]) && lo[i] > 0)
            sb_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>",
                      px(&p, fmax(lo[i], x0)), y + h / 2, px(&p, fmin(hi[i], x1)), y + h / 2);
        sb_printf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", p.width - p.right + 8, y + h / 2 + 4);
        sb_html(out, labels[i]);
        sb_puts(out, "</text>\n");
    }
    plot_end(&p);
}
