/* params.h - a model's parameters as a table of named tensors carved from one allocation.
 *
 * A model lists its tensors (name, shape, initialisation, optimiser group); paramset_alloc then
 * makes one allocation for all values and one for all gradients, and gives each tensor its
 * offset. Optimisers, checkpoints and the PyTorch reference all walk this same table, so a new
 * switch that adds a tensor needs no change outside the model that declares it. */
#ifndef AP_PARAMS_H
#define AP_PARAMS_H

#include "core/rng.h"
#include "core/status.h"

#include <stddef.h>

/* Optimiser groups: weight decay (and, later, Muon) apply per group. Values are stored in files. */
typedef enum {
    PGROUP_MATRIX = 0, /* hidden weight matrices */
    PGROUP_EMBED = 1,  /* token / position embeddings */
    PGROUP_HEAD = 2,   /* untied output head */
    PGROUP_VECTOR = 3, /* norm gains, biases, scalars: never decayed */
    PGROUP_STATE = 4   /* moved by a rule of the model, not by gradients (the MoE router bias):
                        * checkpointed like a parameter, skipped by optimisers */
} ParamGroup;

typedef enum {
    PINIT_ZEROS = 0,
    PINIT_ONES,
    PINIT_NORMAL,  /* N(0, std) */
    PINIT_UNIFORM, /* U(-std, std) */
    PINIT_CONST,   /* every entry = init_scale */
} ParamInit;

#define PARAM_NAME_MAX 48
#define PARAM_MAX_DIMS 4
#define PARAM_MAX_TENSORS 64

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    size_t shape[PARAM_MAX_DIMS];
    size_t numel;
    size_t offset; /* in floats from the start of the arena */
    int group;
    int init;
    float init_scale;
    float lr_mult;     /* this tensor's learning rate as a multiple of the group's (muP); 1 by default */
    int n_blocks;      /* row blocks of each matrix that are separate linear maps (fused q|k|v, gate|up) */
    size_t block_rows[4];
    float **slot;      /* where the model keeps its value pointer */
    float **grad_slot; /* and its gradient pointer */
} ParamTensor;

typedef struct {
    ParamTensor t[PARAM_MAX_TENSORS];
    int n;
    size_t numel;
    float *data; /* one allocation, 64-byte aligned */
    float *grad; /* same carving */
} ParamSet;

/* Declares a tensor; shape dims end at the first 0. */
void paramset_add(ParamSet *ps, const char *name, float **slot, float **grad_slot, int group, int init,
                  float init_scale, size_t d0, size_t d1, size_t d2);
/* Marks the last declared tensor's matrices as stacked row blocks (e.g. q, k, v rows), which
 * matrix-aware optimisers (Muon) treat as separate maps. Rows must add up to shape[-2]. */
void paramset_set_blocks(ParamSet *ps, int n, const size_t *rows);
/* Allocates values and gradients, sets every slot. */
int paramset_alloc(ParamSet *ps, Status *st);
/* Fills values from the table's init rules, tensor by tensor in order, from rng. */
void paramset_init(ParamSet *ps, Rng *rng);
void paramset_zero_grad(ParamSet *ps);
const ParamTensor *paramset_find(const ParamSet *ps, const char *name);
void paramset_free(ParamSet *ps);
/* 64-byte aligned, zeroed allocation; NULL on failure. */
float *floats_alloc(size_t n);

#endif
