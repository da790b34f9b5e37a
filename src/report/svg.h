/* svg.h - small inline-SVG plots for the report: axes (linear or log), points, lines, shaded
 * bands, a horizontal reference line and a legend. Everything is drawn into a StrBuf;
 * nothing is fetched, so the report reads offline. */
#ifndef AP_SVG_H
#define AP_SVG_H

#include "core/strbuf.h"

typedef struct {
    StrBuf *out;
    int width, height;
    double left, right, top, bottom; /* plot area in pixels */
    double x0, x1, y0, y1;           /* data range */
    int logx, logy;
} Plot;

/* Opens an <svg> with a title and axis labels over the data range; log axes take decades. */
void plot_begin(Plot *p, StrBuf *out, const char *id, const char *title, const char *xlabel, const char *ylabel,
                double x0, double x1, double y0, double y1, int logx, int logy);
void plot_points(Plot *p, const double *x, const double *y, int n, const char *color, const char *label);
/* Other markers: MARK_FRONTIER (an outlined diamond) and MARK_HOLLOW (a hollow circle: left out). */
enum { MARK_FRONTIER = 1, MARK_HOLLOW = 2 };
void plot_markers(Plot *p, const double *x, const double *y, int n, const char *color, const char *label, int style);
void plot_line(Plot *p, const double *x, const double *y, int n, const char *color, int dashed);
void plot_band(Plot *p, const double *x, const double *lo, const double *hi, int n, const char *color);
void plot_hline(Plot *p, double y, const char *color, const char *label);
void plot_legend(Plot *p, const char *const *names, const char *const *colors, int n);
/* Horizontal bars (for ablations) on a log x axis: one row per label, a value and an interval
 * whisker, coloured per row. Opens and closes its own <svg>. */
void plot_bars(StrBuf *out, const char *id, const char *title, const char *xlabel, const char *const *labels,
               const double *value, const double *lo, const double *hi, const char *const *colors, int n);
void plot_end(Plot *p);
/* A colour from a fixed, colour-blind-friendly palette. */
const char *plot_color(int i);

#endif
