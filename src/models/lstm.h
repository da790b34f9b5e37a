/* lstm.h - a multi-layer LSTM language model (Hochreiter & Schmidhuber 1997), the 2016 baseline.
 *
 * embedding (V, E) -> L LSTM layers -> head (V, R), tied to the embedding when R == E.
 * E = d_model; each layer has hidden size H = lstm_hidden (default d_model) and, with lstm_proj
 * (LSTMP, Sak et al. 2014; Jozefowicz et al. 2016), projects h to R = d_model, else R = H.
 * Gates in PyTorch's order (input, forget, cell, output) so torch.nn.LSTM can load the weights.
 * The input projection of a whole sequence is one GEMM; the recurrence is one small GEMM per
 * time step; the backward gathers the weight gradients of all steps into one GEMM each.
 *
 * Truncated BPTT: with lstm_state = carry the final (h, c) of each batch row is kept and starts
 * the row's next chunk (no gradient flows across); with reset every chunk starts from zeros. */
#ifndef AP_LSTM_H
#define AP_LSTM_H

#include "core/rng.h"
#include "core/status.h"
#include "config/config.h"
#include "core/params.h"

#define LSTM_MAX_LAYERS 12

typedef struct {
    float *w_ih[LSTM_MAX_LAYERS]; /* (4H, in)  in = E for layer 0, R above */
    float *w_hh[LSTM_MAX_LAYERS]; /* (4H, R) */
    float *b[LSTM_MAX_LAYERS];    /* (4H) */
    float *w_p[LSTM_MAX_LAYERS];  /* (R, H)   lstm_proj only */
    float *wte;                   /* (V, E) */
    float *head;                  /* (V, R)   untied only */
} LstmWeights;

typedef struct {
    Config cfg;
    int E, H, R, L, V;
    ParamSet ps;
    LstmWeights w, g;
    int B, T;
    float *mem; /* activations and scratch, one allocation */
    size_t mem_numel;
    float *x0;                     /* (B, T, E) embeddings */
    float *G[LSTM_MAX_LAYERS];     /* (B, T, 4H) gate activations i, f, g, o */
    float *C[LSTM_MAX_LAYERS];     /* (B, T, H) cell states */
    float *TC[LSTM_MAX_LAYERS];    /* (B, T, H) tanh(c) */
    float *Hh[LSTM_MAX_LAYERS];    /* (B, T, H) o * tanh(c), before the projection (lstm_proj only) */
    float *Y[LSTM_MAX_LAYERS];     /* (B, T, R) layer outputs */
    float *h0, *c0;                /* (L, B, R), (L, B, H) state the chunk starts from */
    float *carry_h, *carry_c;      /* (L, B, R), (L, B, H) state carried between chunks */
    float *logits_raw, *probs, *losses;
    float *w_hh_t;                 /* (R, 4H) a layer's recurrent weights transposed (small_gemm's B) */
    /* backward scratch */
    float *dG, *dR, *dY, *dX, *hprev, *dh, *dc, *dh_next, *dc_next, *dlogits_raw;
    int *inputs, *targets;
    int have_targets;
} Lstm;

int lstm_create(Lstm *m, const Config *cfg, Rng *rng, Status *st);
/* The parameter table of a config, without allocating values (slots are not usable). */
void lstm_param_table(const Config *cfg, ParamSet *out);
int lstm_prepare(Lstm *m, int B, int T, Status *st);
/* Floats lstm_prepare allocates for batch B x T, without building the model. */
size_t lstm_activation_floats(const Config *cfg, int B, int T);
/* stateful: start from (and afterwards keep) the carried state; else start from zeros. */
float lstm_forward(Lstm *m, const int *inputs, const int *targets, int B, int T, int stateful);
void lstm_backward(Lstm *m);
void lstm_reset_state(Lstm *m);
void lstm_free(Lstm *m);
double lstm_step_flops_forward(const Config *c, int B, int T);
/* One token for generation, the training forward at B = T = 1: state (L, R) + (L, H) in h, c,
 * updated in place; scratch of lstm_token_scratch_floats(m); writes V logits. */
size_t lstm_token_scratch_floats(const Lstm *m);
void lstm_forward_token(const Lstm *m, float *h, float *c, float *scratch, int token, float *logits);

#endif
