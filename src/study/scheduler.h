/* scheduler.h - running a study: plan, registry, workers.
 *
 * `study_run` plans every run (alloc.h), records the plan in the registry (or checks an existing
 * registry holds this study), gives runs of dead workers back, then trains pending runs until
 * none is left (worker.h): in this process (workers = 1), in `workers` child processes that share
 * the registry, each with threads = cores / workers, or over MPI ranks (coordinator.h). Every run
 * lives in DIR/runs/ID-ARM and resumes from its checkpoint, so a study killed at any moment
 * continues where it stopped and ends with the same results as one never interrupted. */
#ifndef AP_SCHEDULER_H
#define AP_SCHEDULER_H

#include "core/status.h"

#include <signal.h>
#include <stdio.h>

typedef struct {
    int workers;       /* processes training runs in parallel; 0: one per core when every run is small
                        * (a step under 1e10 FLOPs), else one */
    int threads;       /* per worker; 0: cores / workers */
    int ranks_per_run; /* under mpirun: ranks training each run data-parallel (0 or 1: one) */
    int quiet;         /* no progress display */
    const volatile sig_atomic_t *stop; /* the caller's stop flag (a signal handler sets it); may be NULL */
} StudyOptions;

/* Returns 0 when every run is done, 1 when some failed, -1 on an error (st set); a stop request
 * returns -1 with AP_EINTERRUPTED after the runs in training were checkpointed and released. */
int study_run(const char *study_path, const char *out_dir, const StudyOptions *o, Status *st);
/* Prints the plan without running anything. */
int study_plan(const char *study_path, FILE *out, Status *st);

#endif
