/* report.h - a study's report: plots, fits, compute-equivalent gains and claim verdicts.
 *
 * `algoprog report DIR` reads DIR/registry.db and writes DIR/report/:
 *   index.html   self-contained (inline CSS and SVG, no network): the claims table with verdicts
 *                computed from this study's data, loss against compute with fitted frontiers,
 *                CEG against compute with bootstrap bands, IsoFLOP profiles (isoflop arms), the
 *                fit, CEG and run tables, the methods (seeds, budgets, shapes, learning rates and
 *                how they were chosen, data, tokenizer) and the accounting of the seeds' numbers
 *   runs.csv, metrics.csv, fits.csv, ceg.csv, claims.csv and report.json: every table as data.
 * The layers: results.h loads and fits, claims.h judges, html.h and tables.h write. */
#ifndef AP_REPORT_H
#define AP_REPORT_H

#include "core/status.h"

typedef struct {
    int n_boot; /* bootstrap resamples (default 1000) */
    unsigned long long seed;
    int verbose;
} ReportOptions;

int report_write(const char *dir, const ReportOptions *o, Status *st);

#endif
