/* blocks.h - the Transformer's sub-layers, internal to src/models.
 *
 * transformer.c stacks blocks (norms, residuals, embeddings, head); each sub-layer lives in its
 * own file with its forward, backward and (attention) one-token decoding, so a variant (another
 * attention, a mixture-of-experts MLP) is a sibling file, not a branch in the stacking code.
 * A sub-layer maps inp (N, C) to out (N, C) for layer l, reading its weights from the model and
 * saving what its backward needs in the buffers it is given: slices of TransformerActs in
 * training, one token's buffers in decoding. Backwards take their scratch from m->a and
 * accumulate into dinp and the model's gradients. */
#ifndef AP_BLOCKS_H
#define AP_BLOCKS_H

#include "models/transformer.h"

#include <string.h>

/* Pointer to layer l's slice of a stacked tensor, or NULL when the tensor does not exist. */
static inline float *at(float *base, size_t l, size_t per_layer) { return base ? base + l * per_layer : NULL; }
static inline const float *cat(const float *base, size_t l, size_t per_layer) {
    return base ? base + l * per_layer : NULL;
}

static inline void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

/* ---- attention (attention_block.c): out = wo . attention(qkv(inp)) + bo ---- */
typedef struct {
    float *qkv;     /* (N, QKV) the projection */
    float *qkvp;    /* (N, QKV) after QK-norm / RoPE / value mixing, when any is on */
    float *qk_rstd; /* (N, H + Hkv) qk_norm */
    float *att;     /* (B, H, T, T) softmax probabilities; decoding (H, pos + 1) */
    float *atty;    /* (N, C) attention output before the projection */
    /* attention = mla (mla_block.c) */
    float *cq_raw, *cq, *cq_rstd;    /* (N, Rq) x2, (N): the query latent, before and after its norm */
    float *ckv_raw, *ckv, *kv_rstd;  /* (N, R) x2, (N): the key/value latent */
    float *kvu;                      /* (N, H*(dn + hd)) its up-projection: per head dn key floats, hd values */
    float *kr;                       /* (N, dr) the shared RoPE key, rotated */
} AttnActs;

void attn_block_forward(const Transformer *m, size_t l, float *out, const AttnActs *s, const float *inp,
                        const int *tokens, size_t B, size_t T);
/* dinp may alias dout: dout is consumed before dinp is written. dinp_mode: added to or written over
 * (ops.h). */
void attn_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                         const float *inp, const AttnActs *s, const int *tokens, size_t B, size_t T);
/* One token at position pos: appends its keys and values to layer l of the cache and attends to
 * positions 0..pos. */
void attn_block_forward_token(const Transformer *m, size_t l, KVCache *kv, float *out, const AttnActs *s,
                              const float *inp, int token, int pos);

/* ---- multi-head latent attention (mla_block.c), the same contract as attention's ---- */
void mla_block_forward(const Transformer *m, size_t l, float *out, const AttnActs *s, const float *inp, size_t B,
                       size_t T);
void mla_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                        const float *inp, const AttnActs *s, size_t B, size_t T);
void mla_block_forward_token(const Transformer *m, size_t l, KVCache *kv, float *out, const AttnActs *s,
                             const float *inp, int pos);

/* ---- MLP (mlp_block.c): out = wproj . act(wfc . inp + bfc) + bproj ---- */
typedef struct {
    float *fch; /* (N, F1) pre-activation */
    float *fcg; /* (N, F) activation */
} MlpActs;

void mlp_block_forward(const Transformer *m, size_t l, float *out, const MlpActs *s, const float *inp, size_t N);
void mlp_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                        const float *inp, const MlpActs *s, size_t N);
/* The MLP's activation (or gated unit) over N rows of F outputs (inp: N x F1), for the experts too. */
void mlp_act_forward(const Config *c, float *out, const float *inp, size_t N, size_t F);
void mlp_act_backward(const Config *c, float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N,
                      size_t F);

/* ---- mixture of experts (moe_block.c): out = shared(inp) + sum_k gate_k expert_{sel_k}(inp) ---- */
typedef struct {
    float *rlog, *rsc;   /* (N, E) router logits and scores */
    int *sel;            /* (N, K) the experts each token goes to */
    float *gate;         /* (N, K) their gates */
    int *order, *pos;    /* (N*K) the assignments grouped by expert, and each one's row (moe_dispatch) */
    int *eoff;           /* (E+1) each expert's first row */
    float *xin, *ey;     /* (N*K, C) each expert's input rows and output rows */
    float *eh, *eg;      /* (N*K, Fe1), (N*K, Fe) its pre-activation and activation */
    float *sh, *sg;      /* (N, S*Fe1), (N, S*Fe) the shared experts' */
} MoeActs;

/* training: count the load and the balance loss (a forward with targets). */
void moe_block_forward(Transformer *m, size_t l, float *out, const MoeActs *s, const float *inp, size_t N,
                       int training);
void moe_block_backward(Transformer *m, size_t l, float *dinp, const float *dout, const float *inp, const MoeActs *s,
                        size_t N);

#endif
