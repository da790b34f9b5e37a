/* optim.h - optimisers, gradient clipping and learning-rate schedules.
 *
 * The update rules follow PyTorch's reference implementations term by term (torch.optim.SGD,
 * Adam, AdamW as of 1.13) so the reference test can compare parameters after several steps.
 * Weight decay applies to matrices, embeddings and the head, never to norm gains or biases
 * (params.h groups). State lives in one allocation per moment, carved like the parameters.
 *
 * Muon (Jordan et al. 2024, as in modded-nanogpt): for hidden weight matrices (PGROUP_MATRIX),
 *   buf = mu * buf + g;  u = g + mu * buf (Nesterov);  O = NewtonSchulz5(u)
 *   p = p * (1 - lr * wd) - lr * sqrt(max(1, rows / cols)) * O
 * applied to each layer's matrix and, within it, to each row block that is a separate linear
 * map (q, k, v; gate, up). The sqrt(rows/cols) factor keeps the update's RMS per entry about the
 * same across shapes, so one lr transfers across widths. Every other parameter gets AdamW at
 * adam_lr (or lr when adam_lr is 0).
 *
 * Schedule-free AdamW (Defazio et al. 2024, as in their reference code): the model holds y, where
 * gradients are taken; z is an SGD sequence on Adam-normalised gradients, x the average of z
 * weighted by lr_max^2 (c = w_t / sum w), and y = (1 - beta1) z + beta1 x. Per step, with
 * lr_t = lr sqrt(1 - beta2^t) and d = g / (sqrt(v) + eps) + wd y:
 *   y = y + c (z - y) + lr_t (beta1 (1 - c) - 1) d;   z = z - lr_t d
 * Evaluations use x = y + (1 - 1/beta1)(z - y). State: z in m, v. */
#ifndef AP_OPTIM_H
#define AP_OPTIM_H

#include "core/status.h"
#include "config/config.h"
#include "core/params.h"

#include <stdint.h>

typedef struct {
    int kind; /* OptimizerKind */
    double beta1, beta2, eps, weight_decay, momentum, muon_momentum, adam_lr, lr_peak;
    ParamSet *ps;
    float *m; /* Adam first moment, or SGD / Muon momentum buffer (numel) */
    float *v; /* Adam second moment (numel), NULL for SGD */
    int64_t t; /* steps taken */
    float *ns; /* Newton-Schulz workspace (Muon) */
    double ema_decay;
    float *ema;      /* the weights' moving average (ema_decay > 0; numel), starts at the weights */
    float *eval_swap; /* the training weights while evaluation weights are swapped in */
    int eval_in;      /* 1 while they are in the model */
    double sf_lr_max, sf_weight_sum; /* schedulefree: the largest lr so far, the sum of averaging weights */
} Optimizer;

/* What a checkpoint keeps of an optimiser beside its state tensors. */
typedef struct {
    int64_t t;
    double sf_lr_max, sf_weight_sum;
} OptimMeta;

/* Muon's orthogonalisation: Newton-Schulz with the quintic coefficients (3.4445, -4.7750, 2.0315)
 * of Jordan et al. (2024), `steps` iterations on G (rows x cols, row-major), written to out.
 * Pushes every singular value of G/|G|_F towards ~1 (into about [0.7, 1.2]), keeping the singular
 * vectors. ws holds 3*k*k + 2*rows*cols floats, k = min(rows, cols). */
void muon_orthogonalize(float *out, const float *G, int rows, int cols, int steps, float *ws);

int optim_create(Optimizer *o, const Config *cfg, ParamSet *ps, Status *st);
void optim_free(Optimizer *o);
/* Global L2 norm of all gradients (summed in a fixed order, so deterministic). */
double optim_grad_norm(const ParamSet *ps);
/* Scales gradients so their global norm is at most max_norm (PyTorch's clip_grad_norm_ rule:
 * coefficient max_norm / (norm + 1e-6), only when below 1). Returns the norm before clipping. */
double optim_clip(ParamSet *ps, double max_norm);
/* One update with learning rate lr. */
void optim_step(Optimizer *o, double lr);
/* Moves the weights' average towards the weights (after the step and model_end_step). */
void optim_ema_update(Optimizer *o);
/* Puts the weights evaluations use into the model (optim_eval_weights_in: the moving average of
 * ema_decay, schedulefree's x) and the training weights back (optim_eval_weights_out); no-ops when
 * evaluations use the training weights. */
void optim_eval_weights_in(Optimizer *o);
void optim_eval_weights_out(Optimizer *o);
/* Learning rate for 0-based step `step` of cfg->steps under cfg's schedule and warmup. */
double schedule_lr(const Config *cfg, int step);
/* FLOPs of one optimiser step beyond elementwise work: Muon's Newton-Schulz matrix products
 * (5 iterations of 2k^2n + 2k^3 + 2k^2n per block, k = min(rows, cols)); 0 for the others. */
double optim_step_flops(const Config *cfg, const ParamSet *ps);
/* 1 if the group is weight-decayed. */
int optim_group_decays(int group);

#endif
