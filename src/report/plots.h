/* plots.h - the report's figures, drawn from a study's results with svg.h. */
#ifndef AP_PLOTS_H
#define AP_PLOTS_H

#include "core/strbuf.h"
#include "report/results.h"

/* Every finished run (held-out bits per byte against exact FLOPs) and each arm's frontier. */
void plot_loss_vs_compute(const Results *r, StrBuf *b);
/* CEG of every arm over the first, against the first arm's compute, with 95% bands. */
void plot_ceg_vs_compute(const Results *r, StrBuf *b);
/* IsoFLOP profiles of an isoflop arm: loss against N per budget, with each budget's parabola. */
void plot_isoflop(const Results *r, StrBuf *b, int arm);
/* Loss against KV-cache bytes per token for the arms arms[0..n) (a negative index is skipped):
 * at each budget, each arm's best measured size, the arms of one budget joined by a line. */
void plot_loss_vs_kv(const Results *r, StrBuf *b, const int *arms, int n);
/* One package's one-at-a-time, leave-one-out and whole-package gains as bars. */
void plot_ablation(const ResultAblation *ab, StrBuf *b);

#endif
