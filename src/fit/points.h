/* points.h - the points a fit works on, from any CSV or from a study's registry.
 *
 * CSV: a header row naming columns among arm, params (or params_nonembedding, N), tokens (D),
 * flops (C), loss (or val_bpb, val_loss), budget; any other columns are ignored, so a study's
 * runs.csv and numbers copied from a paper both work. Missing flops are taken as 6 N D and
 * missing tokens as C / (6 N), each said in a note. Rows of a study export that are not finished
 * main runs (learning-rate sweeps, failed runs) are skipped. Budget groups (approach 2) come from
 * a budget column, else from flops rounded to 2 significant digits. */
#ifndef AP_POINTS_H
#define AP_POINTS_H

#include "core/status.h"
#include "fit/laws.h"

#define POINTS_MAX_ARMS 64

typedef struct {
    FitPoint *p;
    int n;
    char arms[POINTS_MAX_ARMS][64];
    int n_arms;
    double group_budget[FIT_MAX_GROUPS];
    int n_groups;
    char notes[256];
} PointSet;

int points_read_csv(PointSet *ps, const char *path, Status *st);
/* The finished main runs of a study: N = non-embedding parameters, loss = held-out bits/byte. */
int points_from_registry(PointSet *ps, const char *dir, Status *st);
/* The points of one arm (a malloc'ed copy). */
int points_of_arm(const PointSet *ps, int arm, FitPoint **out);
void points_free(PointSet *ps);

#endif
