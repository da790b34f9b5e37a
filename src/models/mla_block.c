/* mla_block.c - multi-head latent attention, DeepSeek-V2 (see blocks.h): queries directly or
 * through a normalised latent; keys and values up-projected from a normalised kv_lora_rank latent,
 * each key head ending in one RoPE key shared by all heads. Keys and values are assembled in the
 * fused qkv layout so training runs the same attention kernels as MHA. Decoding caches only the
 * latent and the RoPE key per token and attends in the absorbed form (mla_decode_forward).
 * Head dims: queries and keys hd = dn (no position) + dr (RoPE), values hd. No biases. */
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "models/blocks.h"

#include <string.h>

/* Queries into qkv's query columns (RoPE on their last dr floats), the latent ckv and the RoPE key
 * kr; with `full`, also the up-projected keys and values assembled into qkv (training). */
static void mla_project(const Transformer *m, size_t l, const AttnActs *s, const float *inp, size_t B, size_t T,
                        size_t pos0, int full) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t N = B * T, C = m->C, H = m->H, hd = m->hd, QKV = m->QKV, R = m->R, Rq = m->Rq, dr = m->dr, dn = hd - dr;
    size_t U = H * (dn + hd);
    float eps = (float)c->norm_eps;
    if (Rq) {
        linear_forward(s->cq_raw, inp, w->mla_wdq + l * Rq * C, NULL, N, C, Rq);
        rmsnorm_forward(s->cq, s->cq_rstd, s->cq_raw, w->mla_q_norm + l * Rq, N, Rq, eps);
        gemm_sgemm(0, 1, N, H * hd, Rq, 1.0f, s->cq, Rq, w->mla_wuq + l * H * hd * Rq, Rq, 0.0f, s->qkv, QKV);
    } else {
        gemm_sgemm(0, 1, N, H * hd, C, 1.0f, inp, C, w->mla_wq + l * H * hd * C, C, 0.0f, s->qkv, QKV);
    }
    rope_part_forward(s->qkv, m->rope_cos, m->rope_sin, B, T, QKV, H, hd, dn, dr, pos0);
    linear_forward(s->ckv_raw, inp, w->mla_wdkv + l * R * C, NULL, N, C, R);
    rmsnorm_forward(s->ckv, s->kv_rstd, s->ckv_raw, w->mla_kv_norm + l * R, N, R, eps);
    linear_forward(s->kr, inp, w->mla_wkr + l * dr * C, NULL, N, C, dr);
    rope_part_forward(s->kr, m->rope_cos, m->rope_sin, B, T, dr, 1, dr, 0, dr, pos0);
    if (full) {
        linear_forward(s->kvu, s->ckv, w->mla_wukv + l * U * R, NULL, N, R, U);
        mla_assemble_forward(s->qkv, s->kvu, s->kr, N, H, hd, dn);
    }
}

void mla_block_forward(const Transformer *m, size_t l, float *out, const AttnActs *s, const float *inp, size_t B,
                       size_t T) {
    size_t N = B * T, C = m->C;
    mla_project(m, l, s, inp, B, T, 0, 1);
    attention_forward(s->atty, s->att, m->a.attn_scratch, s->qkv, B, T, (size_t)m->H, (size_t)m->H, (size_t)m->hd,
                      (size_t)m->cfg.window, NULL);
    linear_forward(out, s->atty, m->w.wo + l * C * C, cat(m->w.bo, l, C), N, C, C);
}

void mla_block_backward(Transformer *m, size_t l, float *dinp, GradWrite dinp_mode, const float *dout,
                        const float *inp, const AttnActs *s, size_t B, size_t T) {
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    size_t N = B * T, C = m->C, H = m->H, hd = m->hd, QKV = m->QKV, R = m->R, Rq = m->Rq, dr = m->dr, dn = hd - dr;
    size_t U = H * (dn + hd);
    /* dout is consumed here, before dinp (which may alias it) is written */
    linear_backward(a->datty, GRAD_SET, g->wo + l * C * C, at(g->bo, l, C), dout, s->atty, w->wo + l * C * C, N, C, C);
    attention_backward(a->dqkv, a->attn_scratch, a->datty, s->qkv, s->atty, s->att, B, T, H, H, hd, (size_t)m->cfg.window, NULL);
    /* keys and values: back through the assembly, the RoPE key, the up-projection, the latent norm */
    mla_assemble_backward(a->mla_dkvu, a->mla_dkr, a->dqkv, N, H, hd, dn);
    rope_part_backward(a->mla_dkr, m->rope_cos, m->rope_sin, B, T, dr, 1, dr, 0, dr, 0);
    linear_backward(a->mla_dckv, GRAD_SET, g->mla_wukv + l * U * R, NULL, a->mla_dkvu, s->ckv, w->mla_wukv + l * U * R,
                    N, R, U);
    zero(a->mla_dckv_raw, N * R);
    rmsnorm_backward(a->mla_dckv_raw, g->mla_kv_norm + l * R, a->mla_dckv, s->ckv_raw, w->mla_kv_norm + l * R,
                     s->kv_rstd, N, R);
    /* queries: RoPE back, then their projection (the query columns of dqkv, rows QKV apart) */
    rope_part_backward(a->dqkv, m->rope_cos, m->rope_sin, B, T, QKV, H, hd, dn, dr, 0);
    if (Rq) {
        const float *wuq = w->mla_wuq + l * H * hd * Rq;
        gemm_sgemm(0, 0, N, Rq, H * hd, 1.0f, a->dqkv, QKV, wuq, Rq, 0.0f, a->mla_dcq, Rq);
        gemm_sgemm(1, 0, H * hd, Rq, N, 1.0f, a->dqkv, QKV, s->cq, Rq, 1.0f, g->mla_wuq + l * H * hd * Rq, Rq);
        zero(a->mla_dcq_raw, N * Rq);
        rmsnorm_backward(a->mla_dcq_raw, g->mla_q_norm + l * Rq, a->mla_dcq, s->cq_raw, w->mla_q_norm + l * Rq,
                         s->cq_rstd, N, Rq);
        linear_backward(dinp, dinp_mode, g->mla_wdq + l * Rq * C, NULL, a->mla_dcq_raw, inp, w->mla_wdq + l * Rq * C, N,
                        C, Rq);
    } else {
        const float *wq = w->mla_wq + l * H * hd * C;
        gemm_sgemm(0, 0, N, C, H * hd, 1.0f, a->dqkv, QKV, wq, C, dinp_mode == GRAD_SET ? 0.0f : 1.0f, dinp, C);
        gemm_sgemm(1, 0, H * hd, C, N, 1.0f, a->dqkv, QKV, inp, C, 1.0f, g->mla_wq + l * H * hd * C, C);
    }
    linear_backward(dinp, GRAD_ADD, g->mla_wdkv + l * R * C, NULL, a->mla_dckv_raw, inp, w->mla_wdkv + l * R * C, N,
                    C, R);
    linear_backward(dinp, GRAD_ADD, g->mla_wkr + l * dr * C, NULL, a->mla_dkr, inp, w->mla_wkr + l * dr * C, N, C, dr);
}

void mla_block_forward_token(const Transformer *m, size_t l, KVCache *kv, float *out, const AttnActs *s,
                             const float *inp, int pos) {
    size_t C = m->C, H = m->H, hd = m->hd, R = m->R, dr = m->dr, T = (size_t)kv->Tmax, U = H * (hd - dr + hd);
    mla_project(m, l, s, inp, 1, 1, (size_t)pos, 0);
    /* the cache: the normalised latent and the rotated RoPE key, nothing per head */
    float *lat = kv->k + l * T * R, *kr = kv->v + l * T * dr;
    memcpy(lat + (size_t)pos * R, s->ckv, R * sizeof(float));
    memcpy(kr + (size_t)pos * dr, s->kr, dr * sizeof(float));
    size_t t0 = m->cfg.window && (size_t)pos + 1 > (size_t)m->cfg.window ? (size_t)pos + 1 - m->cfg.window : 0;
    mla_decode_forward(s->atty, s->att, kv->mla_scratch, s->qkv, lat + t0 * R, kr + t0 * dr, m->w.mla_wukv + l * U * R,
                       (size_t)pos + 1 - t0, H, hd, hd - dr, R);
    linear_forward(out, s->atty, m->w.wo + l * C * C, cat(m->w.bo, l, C), 1, C, C);
}
