/* points.h - the points a fit works on, from any CSV or added one by one (a study's runs come
 * through report/results.h: fit/ knows nothing of studies).
 *
 * CSV: a header row naming columns among arm, params (or params_nonembedding, N), tokens (D),
 * flops (C), loss (or val_bpb, val_loss), budget, seed; any other columns are ignored, so a study's
 * runs.csv and numbers copied from a paper both work. Missing flops are taken as 6 N D and
 * missing tokens as C / (6 N), each said in a note. Rows of a study export that are not finished
 * main runs (learning-rate sweeps, failed runs) are skipped. Budget groups (approach 2) come from
 * a budget column, else from flops rounded to 2 significant digits. Without a seed column (or
 * with seed 0) every run of a budget counts as one seed. */
#ifndef AP_POINTS_H
#define AP_POINTS_H

#include "core/status.h"
#include "fit/laws.h"

#define POINTS_MAX_ARMS 64

typedef struct {
    FitPoint *p;
    int n, cap;
    char arms[POINTS_MAX_ARMS][64];
    int n_arms;
    double group_budget[FIT_MAX_GROUPS];
    int n_groups;
    char notes[256];
} PointSet;

int points_read_csv(PointSet *ps, const char *path, Status *st);
/* Adds an arm name (or finds it); returns its index or -1. */
int points_add_arm(PointSet *ps, const char *arm, Status *st);
/* Adds a point of arm index `arm`; budget names its approach-2 group (points of equal budget). */
int points_add(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
               Status *st);
/* The same, with the run's training seed (>= 1; 0: unknown), which the frontier needs to see noise. */
int points_add_run(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
                   int seed, Status *st);
/* The points of one arm (a malloc'ed copy). */
int points_of_arm(const PointSet *ps, int arm, FitPoint **out);
void points_free(PointSet *ps);

#endif
