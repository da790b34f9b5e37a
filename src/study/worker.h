/* worker.h - training a study's runs: lease, train, record; in one process or in several.
 *
 * A worker leases the next pending run from the registry, trains it in DIR/runs/ID-ARM (from its
 * checkpoint when one is there), records the result (and, after the last run of an arm's sweep,
 * lets study/tune.c choose the arm's learning rate), and leases the next, until none is left.
 * A stop request (*stop nonzero) checkpoints the run in training, gives it back to pending, and
 * returns AP_EINTERRUPTED. Several workers are forked processes sharing the registry. */
#ifndef AP_WORKER_H
#define AP_WORKER_H

#include "core/status.h"
#include "study/progress.h"
#include "study/registry.h"

#include <signal.h>
#include <stddef.h>

typedef struct {
    const char *out_dir;
    int threads;          /* per worker */
    int keep_checkpoints; /* else a finished run's checkpoint is deleted */
    int show;             /* print finished runs and the live line */
    const volatile sig_atomic_t *stop; /* the caller's stop flag (may be NULL) */
} WorkerOptions;

/* DIR/runs/ID-ARM. */
int worker_run_dir(char *buf, size_t size, const char *out_dir, int run_id, const char *arm, Status *st);
/* Trains one run (fresh from config_json, or resumed): 0 done, 1 stopped (checkpointed), -1 failed.
 * The final checkpoint is deleted unless keep (or the study keeps every checkpoint). */
int worker_train(const char *dir, const char *config_json, int keep, const WorkerOptions *o, int dp_size,
                 ProgressCtx *p, Status *st);
/* Reads a trained run's results from its directory into the registry, settling its arm's sweep
 * when it was the last sweep run. */
int worker_record_done(Registry *reg, int run_id, const char *dir, Status *st);
/* Leases and trains runs until none is left (0) or a stop request (-1, AP_EINTERRUPTED). */
int worker_loop(const WorkerOptions *o, Status *st);
/* Forks `workers` processes running worker_loop, shows the study's progress until they end. */
int worker_fork_all(const WorkerOptions *o, int workers, Status *st);

#endif
