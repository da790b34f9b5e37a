/* scheduler.h - running a study: plan, registry, workers, progress; status and export.
 *
 * `study_run` plans every run (alloc.h), records the plan in the registry (or checks an existing
 * registry holds this study), gives runs of dead workers back, then trains pending runs until
 * none is left: in this process (workers = 1) or in `workers` child processes that share the
 * registry, each with threads = cores / workers. Every run lives in DIR/runs/ID-ARM and resumes
 * from its checkpoint, so a study killed at any moment continues where it stopped and ends with
 * the same results as one never interrupted. */
#ifndef AP_SCHEDULER_H
#define AP_SCHEDULER_H

#include "core/status.h"

#include <stdio.h>

typedef struct {
    int workers;  /* processes training runs in parallel */
    int threads;  /* per worker; 0: cores / workers */
    int ranks_per_run; /* under mpirun: ranks training each run data-parallel (0 or 1: one) */
    int quiet;    /* no progress display */
} StudyOptions;

/* Returns 0 when every run is done, 1 when some failed, -1 on an error (st set); 130 if stopped
 * by a signal (runs checkpointed). */
int study_run(const char *study_path, const char *out_dir, const StudyOptions *o, Status *st);
/* Prints the plan without running anything. */
int study_plan(const char *study_path, FILE *out, Status *st);
int study_status(const char *out_dir, FILE *out, Status *st);
/* Writes DIR/runs.csv and DIR/metrics.csv (csv) or DIR/study.json (json); to_dir NULL means DIR. */
int study_export(const char *out_dir, const char *to_dir, int json, int quiet, Status *st);

#endif
