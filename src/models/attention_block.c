/* attention_block.c - the attention sub-layer: fused QKV projection -> optional QK-norm ->
 * optional RoPE -> optional value-embedding mixing -> causal attention over n_kv_heads key/value
 * heads -> output projection (see blocks.h). Training and decoding share everything but the
 * attention kernel: the batch attends within itself, a decoded token to the KV cache. */
#include "kernels/ops.h"
#include "models/blocks.h"

#include <string.h>

/* qkv = wqkv . inp + bqkv (B*T rows), then what attention reads: QK-norm, RoPE at positions
 * pos0.., value mixing. Those write into s->qkvp (the projection stays for the backward), which
 * is returned when any applies; else qkv is. */
static const float *qkv_forward(const Transformer *m, size_t l, const AttnActs *s, const float *inp,
                                const int *tokens, size_t B, size_t T, size_t pos0) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t N = B * T, C = m->C, QKV = m->QKV, V = m->V, hd = m->hd, H = m->H, Hkv = m->Hkv, nqk = H + Hkv;
    float *qkv = s->qkv, *qkvp = s->qkvp;
    linear_forward(qkv, inp, w->wqkv + l * QKV * C, cat(w->bqkv, l, QKV), N, C, QKV);
    const float *q = qkv;
    if (c->qk_norm) {
        qknorm_forward(qkvp, s->qk_rstd, qkv, w->q_norm + l * hd, w->k_norm + l * hd, N, H, Hkv, hd,
                       (float)c->norm_eps);
        q = qkvp;
    }
    if (c->pos == POS_ROPE) {
        if (q != qkvp) memcpy(qkvp, qkv, N * QKV * sizeof(float));
        rope_forward(qkvp, m->rope_cos, m->rope_sin, B, T, QKV, nqk, hd, pos0);
        q = qkvp;
    }
    if ((int)l < m->Lve) {
        if (q != qkvp) memcpy(qkvp, qkv, N * QKV * sizeof(float));
        value_mix_forward(qkvp, w->ve + l * V * Hkv * hd, w->ve_lambda + 2 * l, tokens, N, QKV, nqk * hd, Hkv * hd);
        q = qkvp;
    }
    return q;
}

void attn_block_forward(const Transformer *m, size_t l, float *out, const AttnActs *s, const float *inp,
                        const int *tokens, size_t B, size_t T) {
    const TransformerWeights *w = &m->w;
    size_t N = B * T, C = m->C;
    const float *q = qkv_forward(m, l, s, inp, tokens, B, T, 0);
    attention_forward(s->atty, s->att, m->a.attn_scratch, q, B, T, (size_t)m->H, (size_t)m->Hkv, (size_t)m->hd,
                      (size_t)m->cfg.window, m->alibi);
    linear_forward(out, s->atty, w->wo + l * C * C, cat(w->bo, l, C), N, C, C);
}

/* The forward read bottom-up: projection, attention, then the qkv processing in reverse order. */
void attn_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                         const float *inp, const AttnActs *s, const int *tokens, size_t B, size_t T) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    size_t N = B * T, C = m->C, QKV = m->QKV, V = m->V, hd = m->hd, H = m->H, Hkv = m->Hkv, nqk = H + Hkv;
    linear_backward(a->datty, GRAD_SET, g->wo + l * C * C, at(g->bo, l, C), dout, s->atty, w->wo + l * C * C, N, C, C);
    int processed = c->qk_norm || c->pos == POS_ROPE || (int)l < m->Lve;
    attention_backward(a->dqkvp, a->attn_scratch, a->datty, processed ? s->qkvp : s->qkv, s->atty, s->att, B, T, H, Hkv, hd,
                       (size_t)c->window, m->alibi);
    if ((int)l < m->Lve) /* values were mixed last: undo that first (qkv holds the un-mixed values) */
        value_mix_backward(a->dqkvp, g->ve + l * V * Hkv * hd, g->ve_lambda + 2 * l, s->qkv, w->ve + l * V * Hkv * hd,
                           w->ve_lambda + 2 * l, tokens, N, QKV, nqk * hd, Hkv * hd);
    if (c->pos == POS_ROPE) rope_backward(a->dqkvp, m->rope_cos, m->rope_sin, B, T, QKV, nqk, hd, 0);
    const float *dq = a->dqkvp;
    if (c->qk_norm) {
        qknorm_backward(a->dqkv, g->q_norm + l * hd, g->k_norm + l * hd, a->dqkvp, s->qkv, w->q_norm + l * hd,
                        w->k_norm + l * hd, s->qk_rstd, N, H, Hkv, hd);
        dq = a->dqkv;
    }
    linear_backward(dinp, dinp_mode, g->wqkv + l * QKV * C, at(g->bqkv, l, QKV), dq, inp, w->wqkv + l * QKV * C, N, C, QKV);
}

void attn_block_forward_token(const Transformer *m, size_t l, KVCache *kv, float *out, const AttnActs *s,
                              const float *inp, int token, int pos) {
    const TransformerWeights *w = &m->w;
    size_t C = m->C, hd = m->hd, H = m->H, Hkv = m->Hkv, kvd = Hkv * hd, T = (size_t)kv->Tmax;
    const float *q = qkv_forward(m, l, s, inp, &token, 1, 1, (size_t)pos);
    /* the cache holds keys and values exactly as the batched attention reads them from qkvp */
    float *kc = kv->k + l * T * kvd, *vc = kv->v + l * T * kvd;
    memcpy(kc + (size_t)pos * kvd, q + H * hd, kvd * sizeof(float));
    memcpy(vc + (size_t)pos * kvd, q + (H + Hkv) * hd, kvd * sizeof(float));
    /* a sliding window attends to its last `window` positions of the cache */
    size_t t0 = m->cfg.window && (size_t)pos + 1 > (size_t)m->cfg.window ? (size_t)pos + 1 - m->cfg.window : 0;
    attention_decode_forward(s->atty, s->att, q, kc + t0 * kvd, vc + t0 * kvd, (size_t)pos + 1 - t0, H, Hkv, hd, kvd,
                             m->alibi);
    linear_forward(out, s->atty, w->wo + l * C * C, cat(w->bo, l, C), 1, C, C);
}
