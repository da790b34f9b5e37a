/* checkpoint.h - everything needed to continue a run bit for bit.
 *
 * A checkpoint is a tensor file (core/tensorfile.h) whose text holds [meta] (step, counters,
 * the data sampler's RNG state, optimiser step) and [config] (the full resolved recipe), and
 * whose tensors are the parameters "p.NAME", optimiser state "m.NAME" / "v.NAME" and the weights'
 * average "e.NAME" (ema_decay). Restoring
 * checks names and shapes against the model built from the stored config, so a checkpoint
 * from another shape or build is rejected with the tensor that differs. */
#ifndef AP_CHECKPOINT_H
#define AP_CHECKPOINT_H

#include "core/rng.h"
#include "core/status.h"
#include "core/tensorfile.h"
#include "data/dataset.h"
#include "config/config.h"
#include "core/params.h"
#include "models/model.h"
#include "optim/optim.h"

#include <stdint.h>

typedef struct {
    int64_t step;       /* optimiser steps completed */
    double tokens;      /* training tokens consumed */
    double flops;       /* exact training FLOPs spent */
    double loss_sum;    /* training loss accumulated since the last evaluation */
    int64_t loss_count;
    double elapsed_s;   /* wall time so far (informational; not part of bit-identity) */
    DataCursor cursor;  /* position in the training data */
    double lr_scale;    /* 1, halved by each rollback after a NaN/Inf (on_nonfinite = rollback) */
    int64_t rollbacks;
} TrainState;

/* extra: more tensors to store (a recurrent model's carried state), may be NULL. */
int checkpoint_save(const char *path, const Config *cfg, const ParamSet *ps, const Optimizer *opt,
                    const TrainState *ts, const TensorList *extra, Status *st);
/* Opens a checkpoint and parses its config and meta; tensors stay in *tf for the restores. */
int checkpoint_open(const char *path, TensorFile *tf, Config *cfg, TrainState *ts, OptimMeta *om, Status *st);
int checkpoint_restore_params(const TensorFile *tf, ParamSet *ps, Status *st);
int checkpoint_restore_optim(const TensorFile *tf, Optimizer *opt, const OptimMeta *om, Status *st);
/* Builds a model from a checkpoint file (config + parameters), for sampling and inspection. */
int checkpoint_load_model(Model *m, Config *cfg, const char *path, Status *st);
/* The same with key=value overrides applied to the stored recipe before the model is built: keys
 * that change no parameter's shape (a longer context for rope/alibi/none positions, rope_scaling);
 * a shape that no longer matches is an error from the restore. */
int checkpoint_load_model_as(Model *m, Config *cfg, const char *path, int argc, char **argv, Status *st);

#endif
