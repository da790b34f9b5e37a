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

/* ---- MLP (mlp_block.c): out = wproj . act(wfc . inp + bfc) + bproj ---- */
typedef struct {
    float *fch; /* (N, F1) pre-activation */
    float *fcg; /* (N, F) activation */
} MlpActs;

void mlp_block_forward(const Transformer *m, size_t l, float *out, const MlpActs *s, const float *inp, size_t N);
void mlp_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                        const float *inp, const MlpActs *s, size_t N);

#endif
