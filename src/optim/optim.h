/* optim.h - optimisers, gradient clipping and learning-rate schedules.
 *
 * The update rules follow PyTorch's reference implementations term by term (torch.optim.SGD,
 * Adam, AdamW as of 1.13) so the reference test can compare parameters after several steps.
 * Weight decay applies to matrices, embeddings and the head, never to norm gains or biases
 * (params.h groups). State lives in one allocation per moment, carved like the parameters. */
#ifndef AP_OPTIM_H
#define AP_OPTIM_H

#include "core/status.h"
#include "models/config.h"
#include "models/params.h"

#include <stdint.h>

typedef struct {
    int kind; /* OptimizerKind */
    double beta1, beta2, eps, weight_decay, momentum;
    ParamSet *ps;
    float *m; /* Adam first moment, or SGD momentum buffer (numel) */
    float *v; /* Adam second moment (numel), NULL for SGD */
    int64_t t; /* steps taken */
} Optimizer;

int optim_create(Optimizer *o, const Config *cfg, ParamSet *ps, Status *st);
void optim_free(Optimizer *o);
/* Global L2 norm of all gradients (summed in a fixed order, so deterministic). */
double optim_grad_norm(const ParamSet *ps);
/* Scales gradients so their global norm is at most max_norm (PyTorch's clip_grad_norm_ rule:
 * coefficient max_norm / (norm + 1e-6), only when below 1). Returns the norm before clipping. */
double optim_clip(ParamSet *ps, double max_norm);
/* One update with learning rate lr. */
void optim_step(Optimizer *o, double lr);
/* Learning rate for 0-based step `step` of cfg->steps under cfg's schedule and warmup. */
double schedule_lr(const Config *cfg, int step);
/* 1 if the group is weight-decayed. */
int optim_group_decays(int group);

#endif
