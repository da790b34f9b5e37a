/* curriculum.h - what each training step trains on when a run's shape changes with time.
 *
 * Three switches grow a step's shape linearly over a fraction of the run's steps (f = step / steps):
 *   batch_warmup: rows from batch_start to batch, in multiples of batch_start (so a ramp splits over
 *                 data-parallel ranks whenever batch_start does);
 *   seq_warmup:   row length from seq_start to context, in multiples of 8 (each row is the first L
 *                 tokens of a training window; the rest of the window is skipped);
 *   window_warmup: the attention window from window_start to the model's own, in multiples of 16.
 * A step's shape depends on its index alone, so a resumed run trains exactly the steps it would
 * have. The trainer counts each step's tokens and FLOPs; planners, which choose steps from a
 * token or FLOP target, use the means over the run (which do not depend on the number of steps). */
#ifndef AP_CURRICULUM_H
#define AP_CURRICULUM_H

#include "config/config.h"
#include "models/model.h"

typedef struct {
    int batch;   /* rows */
    int context; /* tokens per row */
    int window;  /* attention window (0: all earlier keys) */
} StepShape;

/* 1 if any of the three switches is on. */
int curriculum_active(const Config *c);
/* The shape at fraction f in [0, 1) of the run. */
StepShape curriculum_at(const Config *c, double f);
/* The shape of 0-based step `step` of c->steps. */
StepShape curriculum_step(const Config *c, long step);
/* The model's forward and backward FLOPs of one step of this shape (optimizer left 0). */
StepFlops curriculum_step_flops(const Config *c, StepShape s);
/* Exact totals over the c->steps steps: tokens and model FLOPs (what the trainer will count). */
void curriculum_totals(const Config *c, double *tokens, double *flops);
/* Per-step means over the run (256 midpoints; exact without a curriculum): tokens and model FLOPs. */
void curriculum_mean(const Config *c, double *tokens, StepFlops *flops);

#endif
