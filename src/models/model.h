/* model.h - one interface over the model families (transformer, LSTM).
 *
 * The trainer, the sampler and the reference dumper talk to a Model; each family keeps its own
 * weights, activations and kernels. A family is selected by the `family` key. */
#ifndef AP_MODEL_H
#define AP_MODEL_H

#include "core/rng.h"
#include "core/status.h"
#include "core/tensorfile.h"
#include "config/config.h"
#include "models/lstm.h"
#include "core/params.h"
#include "models/transformer.h"

typedef struct {
    Config cfg;
    Transformer *tf;
    Lstm *lstm;
    ParamSet *ps; /* the family's parameter table */
} Model;

/* Also makes cfg->gemm the process's GEMM library (gemm.h): like the thread count, one per process. */
int model_create(Model *m, const Config *cfg, Rng *rng, Status *st);
int model_prepare(Model *m, int B, int T, Status *st);
/* stateful: the LSTM starts from the state the previous chunk left (training with
 * lstm_state = carry); evaluation passes 0. Transformers ignore it. */
float model_forward(Model *m, const int *inputs, const int *targets, int B, int T, int stateful);
void model_backward(Model *m);
/* After each optimiser step (the trainer's and the reference's): rules that move state tensors
 * (PGROUP_STATE), today the MoE router bias of moe_balance = bias. */
void model_end_step(Model *m);
/* The last training forward's tokens per expert (MoE layers x experts), NULL without experts:
 * data-parallel ranks sum them before model_end_step so every rank moves its biases alike. */
float *model_expert_loads(Model *m, size_t *n);
/* The last training forward's MoE balance loss and its busiest expert's load over the mean (the
 * worst layer's); NaN without experts. */
void model_moe_stats(const Model *m, double *aux_loss, double *load_max);
/* Parameters one token goes through: all but the routed experts it is not sent to. */
size_t model_active_params(const Config *cfg);
/* Per-position losses of the last forward with targets; logits of the last one without. */
const float *model_losses(const Model *m);
const float *model_logits(const Model *m);
void model_free(Model *m);
/* Forward and backward FLOPs of one step of B rows of T tokens with cfg->window (exact,
 * matmul-class; see docs/ARCHITECTURE.md). A run whose shape changes with time counts its steps
 * through train/curriculum.h. */
StepFlops model_step_flops(const Config *cfg, int B, int T);
/* Sets the window the next forwards use (transformers; 0 = all keys). */
void model_set_window(Model *m, int window);
size_t model_total_params(const Model *m);
/* The parameter table of a resolved config (vocab set), values not allocated. */
void model_param_table(const Config *cfg, ParamSet *out);
/* Parameter counts of a resolved config (vocab set) without building the model. */
/* Parameter counts of a resolved config: every parameter (Chinchilla's convention) and N, the
 * non-embedding parameters without the output head, tied or not (ours, for every arm). */
void model_count_params(const Config *cfg, size_t *total, size_t *nonembedding);
size_t model_nonembedding_params(const Model *m);
/* Kaplan et al.'s convention: every parameter but the embeddings (an untied head counts). */
size_t model_kaplan_params(const Config *cfg);
/* Bytes a training run of a resolved config (vocab set) needs for parameters, gradients,
 * optimiser state and activations at batch B x T: the estimate checked before allocating. */
typedef struct {
    double params, grads, optimizer, activations, total;
} MemoryEstimate;
MemoryEstimate model_memory_estimate(const Config *cfg, int B, int T);
/* Bytes of activations and scratch (for reports). */
size_t model_activation_numel(const Model *m);
/* Whether training carries recurrent state between consecutive chunks. */
int model_is_stateful(const Config *cfg);
void model_reset_state(Model *m);
/* Carried state, for checkpoints ("s.*" tensors; none for transformers). */
void model_state_tensors(const Model *m, TensorList *l);
int model_restore_state(Model *m, const TensorFile *f, Status *st);

/* Token-by-token decoding (KV cache for transformers, recurrent state for LSTMs). */
typedef struct {
    const Model *m;
    KVCache kv;
    float *h, *c, *scratch, *logits_buf;
    float *logits; /* V logits after decoder_feed */
    int max_pos;   /* positions the decoder can hold before it must restart (INT_MAX: unbounded) */
} Decoder;

int decoder_create(Decoder *d, const Model *m, Status *st);
void decoder_reset(Decoder *d);
void decoder_feed(Decoder *d, int token, int pos);
void decoder_free(Decoder *d);

#endif
