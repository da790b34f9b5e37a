/* points.h - the points a fit works on, from any CSV or added one by one (a study's runs come
 * through report/results.h: fit/ knows nothing of studies).
 *
 * CSV: a header row naming columns among arm, params (or params_nonembedding, N), tokens (D),
 * flops (C), loss (or test_bpb, val_bpb, val_loss), budget, seed; any other columns are ignored, so a study's
 * runs.csv and numbers copied from a paper both work. Missing flops are taken as 6 N D and
 * missing tokens as C / (6 N), each said in a note. Rows of a study export that are not finished
 * main runs (learning-rate sweeps, failed runs) are skipped. Budget groups (approach 2) come from
 * a budget column, else from flops rounded to 2 significant digits. Without a seed column (or
 * with seed 0) every run of a budget counts as one seed. */
#ifndef AP_POINTS_H
#define AP_POINTS_H

#include "core/status.h"
#include "fit/laws.h"

typedef struct {
    FitPoint *p;
    int n, cap;
    char (*arms)[64]; /* arm names, as many as the data has */
    int n_arms, arms_cap;
    double *cost;         /* per point, its cost on another axis than FLOPs (NULL: none; points_set_cost) */
    int cost_cap;
    double *group_budget; /* each budget group's budget */
    int n_groups, groups_cap;
    char notes[256];
} PointSet;

int points_read_csv(PointSet *ps, const char *path, Status *st);
/* The same, reading each row's cost on `axis` (COST_*) too (its column must be there), with the
 * user's names for columns: rename (NULL-terminated, may be NULL) holds "NAME=HEADER" entries, e.g.
 * "params=Model Size", which make that header's column the one read as NAME. */
int points_read_csv_axis(PointSet *ps, const char *path, int axis, const char *const *rename, Status *st);
/* Adds an arm name (or finds it); returns its index or -1. */
int points_add_arm(PointSet *ps, const char *arm, Status *st);
/* Adds a point of arm index `arm`; budget names its approach-2 group (points of equal budget). */
int points_add(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
               Status *st);
/* The same, with the run's training seed (>= 1; 0: unknown), which the frontier needs to see noise. */
int points_add_run(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
                   int seed, Status *st);
/* Cost axes a CEG can be measured on: training FLOPs (the default), wall-clock seconds of training on
 * the machine that ran it, parameters (every one), KV-cache bytes per token at inference, and peak
 * training memory. CSV columns: seconds (or elapsed_s), params, kv_bytes, memory. */
enum { COST_FLOPS, COST_SECONDS, COST_PARAMS, COST_KV_BYTES, COST_MEMORY, COST_AXES };
extern const char *const cost_axis_names[COST_AXES];
int cost_axis_parse(const char *name); /* -1: unknown */
/* Sets point i's cost on the axis points_cost_axis will use. */
int points_set_cost(PointSet *ps, int i, double cost, Status *st);
/* Moves the points onto another cost axis (each point's cost, > 0): runs of one configuration (arm,
 * N, D) are one point at their mean cost, and an arm keeps only the configurations no cheaper one
 * beats on mean loss (its Pareto front), each its own budget group with its seeds; the frontier then
 * runs through the front, flops standing for the cost. */
int points_cost_axis(PointSet *ps, int axis, Status *st);
/* The points of one arm (a malloc'ed copy). */
int points_of_arm(const PointSet *ps, int arm, FitPoint **out);
void points_free(PointSet *ps);

#endif
