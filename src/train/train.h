/* train.h - the training loop: data -> model -> optimiser, evaluation, metrics, checkpoints.
 *
 * A run lives in one directory (cfg.out; its files are listed in train/rundir.h).
 * A run killed at any moment resumes from checkpoint.bin and produces the same metrics, bit for
 * bit, as a run never interrupted (timing fields excepted). */
#ifndef AP_TRAIN_H
#define AP_TRAIN_H

#include "core/status.h"
#include "data/dataset.h"
#include "config/config.h"
#include "models/model.h"
#include "optim/optim.h"
#include "train/checkpoint.h"
#include "train/rundir.h"

#include <signal.h>

typedef struct Trainer Trainer;

struct Trainer {
    Config cfg;
    Model model;
    Optimizer opt;
    Dataset data;
    TrainState ts;
    int *inputs, *targets;
    StepFlops step_flops; /* per step; under a curriculum (curriculum.h), the run's mean */
    double step_tokens;   /* likewise */
    int quiet; /* no terminal output */
    /* Data parallel over MPI ranks (dist.h): set dp_size before trainer_setup/resume (0 or 1: one
     * process). Each rank trains batch/dp_size rows of every global batch; gradients are summed
     * over ranks and divided by dp_size, so every rank holds the same model and optimiser state.
     * Only rank 0 writes files. */
    int dp_size, dp_rank, local_batch;
    /* distillation (cfg.teacher): the teacher's model and recipe, and its tempered softmax of the
     * current batch (local_batch x context x vocab) */
    Model *teacher;
    Config teacher_cfg;
    float *soft;
    double last_lr, last_grad_norm;
    double last_moe_aux, last_moe_load_max; /* the last step's (NaN without experts) */
    RunTimes times; /* this process's share of the run (final.json "time") */
    int locked, lock_fd; /* rank 0 holds the run directory's lock (rundir_lock) while it trains */
    /* Owned by the caller (a signal handler sets it): when nonzero, the loop checkpoints and
     * returns AP_EINTERRUPTED. May be NULL. */
    const volatile sig_atomic_t *stop;
    /* called after every step (studies report progress through it); may be NULL */
    void (*on_step)(void *ctx, const Trainer *tr, float loss);
    void *on_step_ctx;
};

/* Fresh run: loads data, resolves the config, builds and initialises model and optimiser.
 * Refuses an out directory that already holds a checkpoint. */
int trainer_setup(Trainer *tr, const Config *cfg, Status *st);
/* Refuses (AP_ENOMEM), before anything large is allocated, a run that cannot fit memory_limit or
 * else the memory available now: a forged or mistyped shape, or a study budget beyond this
 * machine, should be an error with the arithmetic, not the OOM killer an hour later. */
int train_check_memory(const Config *c, int local_batch, Status *st);
/* Continues the run in dir. Overrides may change only keys that keep the run well defined
 * (steps, eval/log/checkpoint cadence, threads). */
int trainer_resume(Trainer *tr, const char *dir, int argc, char **argv, Status *st);
/* Trains until cfg.steps; evaluates, logs and checkpoints on the way. Fails with AP_EINTERRUPTED
 * (checkpoint saved) when *tr->stop becomes nonzero. */
int trainer_run(Trainer *tr, Status *st);
/* Mean loss (nats/token) and bits per byte over the first `tokens` tokens (whole batches) of a
 * held-out part (tokens <= 0: the whole part); bpb_se (may be NULL): the standard error of bpb
 * with the evaluation windows as the sampling unit (how much the text chosen moves the number). */
void trainer_evaluate(Trainer *tr, EvalPart part, long tokens, double *loss, double *bpb, double *bpb_se);
void trainer_free(Trainer *tr);
#endif
