/* ops.h - the forward/backward operation pairs every model is built from.
 *
 * Conventions (all kernels):
 * - fp32 tensors, row-major, sizes in size_t; shapes are given in comments as (rows, cols).
 * - A pair `x_forward(out, inputs..., weights..., saved..., sizes)` and
 *   `x_backward(dinputs..., dweights..., dout, inputs..., weights..., saved..., sizes)`:
 *   the backward mirrors the forward's argument order.
 * - Backward ACCUMULATES (+=) into every gradient it writes, so a tensor used twice (a residual
 *   stream, a tied embedding) collects both contributions. Callers zero gradient buffers first.
 *   Exceptions are marked: rope works in place; crossentropy_softmax_backward,
 *   attention_backward, qknorm_backward (its input) and lstm_cell_backward overwrite; linear,
 *   the activations and softcap take a GradWrite.
 * - Parallel loops partition work so that each output element is computed by one thread in a
 *   fixed order: results do not depend on the number of threads, except inside GEMMs (gemm.h),
 *   which are deterministic for a given library and thread count.
 * - A simple, slow reference of each fast kernel lives in tests/ and is compared against it. */
#ifndef AP_OPS_H
#define AP_OPS_H

#include "core/parallel.h"

#include <stddef.h>

/* Loops over fewer elements than this run on the calling thread: waking the thread pool costs a
 * few microseconds, more than the work itself in batch-1 decoding or on tiny tensors. Which
 * thread computes an element never changes its value, so results stay bit-identical. */
#define AP_PAR_MIN 16384
/* Whether a loop of `work` elements should run as a parallel region at all. libgomp ends every
 * region, even one of one thread or with a false `if` clause, at a barrier whose last arrival makes
 * a futex system call; kernels called once per time step (the LSTM cell: ~1900 regions a training
 * step) test this in C and otherwise run their loop without entering a region. */
static inline int ap_parallel_worth(size_t work) { return work >= AP_PAR_MIN && parallel_threads() > 1; }

/* ---- token embedding: out[n] = scale * wte[tokens[n]] ---- */
void embedding_forward(float *out, const int *tokens, const float *wte, size_t N, size_t C, float scale);
void embedding_backward(float *dwte, const float *dout, const int *tokens, size_t N, size_t C, float scale);

/* ---- positions ---- */
/* Learned absolute positions: x[b,t] += wpe[t]. x (B,T,C), wpe (T,C). In place. */
void posemb_learned_forward(float *x, const float *wpe, size_t B, size_t T, size_t C);
void posemb_learned_backward(float *dwpe, const float *dx, size_t B, size_t T, size_t C);
/* Sinusoidal (Vaswani 2017): x[b,t,2i] += sin(t / 10000^(2i/C)), x[b,t,2i+1] += cos(same).
 * No parameters; its backward is the identity, so there is no _backward. pos0 offsets t. */
void posemb_sinusoidal_forward(float *x, size_t B, size_t T, size_t C, size_t pos0);
/* Rotary (Su et al. 2021), GPT-NeoX "half split" pairing (i, i + hd/2). Tables (T, hd/2) hold
 * cos/sin of t * base^(-2i/hd). Rotates the first n_rot head vectors of each row of x, rows of
 * `stride` floats, in place. Backward rotates the gradient by the opposite angle, also in place
 * (the map is orthogonal, so its transpose is its inverse). */
/* Context extension: the tables for positions beyond a model's original context L, by scale s:
 *   linear (position interpolation, Chen et al. 2023): angle t/s * freq_i;
 *   ntk (NTK-aware, bloc97 2023): base' = base * s^(hd/(hd-2));
 *   yarn (Peng et al. 2023): per frequency, r = L freq_i / 2pi, g = clamp((r - 1) / 31, 0, 1),
 *        freq'_i = (1 - g) freq_i / s + g freq_i (interpolate long wavelengths, keep short ones),
 *        and cos and sin scaled by m = 0.1 ln s + 1, so that attention logits of rotated heads
 *        are multiplied by m^2 (YaRN's temperature). */
typedef enum { ROPE_SCALE_NONE = 0, ROPE_SCALE_LINEAR = 1, ROPE_SCALE_NTK = 2, ROPE_SCALE_YARN = 3 } RopeScaleKind;
typedef struct {
    int kind;           /* RopeScaleKind */
    double factor;      /* s >= 1 (1: unscaled) */
    double orig_context; /* L (yarn) */
} RopeScaling;
/* scaling may be NULL (none). */
void rope_tables(float *cos_tab, float *sin_tab, size_t T, size_t hd, float base, const RopeScaling *scaling);
void rope_forward(float *x, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                  size_t n_rot, size_t hd, size_t pos0);
void rope_backward(float *dx, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                   size_t n_rot, size_t hd, size_t pos0);
/* The same rotation on part of each head (MLA's decoupled RoPE): n_rot vectors of rd floats at
 * columns off, off + head_stride, ... of each row; tables built for rd. */
void rope_part_forward(float *x, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                       size_t n_rot, size_t head_stride, size_t off, size_t rd, size_t pos0);
void rope_part_backward(float *dx, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                        size_t n_rot, size_t head_stride, size_t off, size_t rd, size_t pos0);

/* Value embeddings (modded-nanogpt, 2024): in rows of `stride` floats, the kvd values at column
 * `off` become v' = lambda[0] * v + lambda[1] * ve[token] (ve is (V, kvd)), in place. The backward
 * turns dx (the gradient of v') into the gradient of v in place, given the un-mixed v, and
 * accumulates into dve and dlambda (2). */
void value_mix_forward(float *x, const float *ve, const float *lambda, const int *tokens, size_t N, size_t stride,
                       size_t off, size_t kvd);
void value_mix_backward(float *dx, float *dve, float *dlambda, const float *v_raw, const float *ve, const float *lambda,
                        const int *tokens, size_t N, size_t stride, size_t off, size_t kvd);

/* ---- linear: out (M,OC) = inp (M,IC) . weight(OC,IC)^T + bias(OC); bias may be NULL ---- */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t M, size_t IC,
                    size_t OC);
/* How a backward writes an input gradient: added to what the buffer holds (every backward's rule
 * for weights, and for an input that fed several consumers), or written over it when the caller
 * knows it is the only contribution (no zeroing pass first: the product's beta is 0). */
typedef enum { GRAD_ADD = 0, GRAD_SET = 1 } GradWrite;
/* dinp, dbias may be NULL (not needed). dweight and dbias are always added to; dinp per dinp_mode. */
void linear_backward(float *dinp, GradWrite dinp_mode, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, size_t M, size_t IC, size_t OC);

/* ---- mixture-of-experts routing (moe.c) ----
 * Router: logits (N,E) -> scores (N,E): softmax over experts, or sigmoid of each. Each token picks
 * the K experts with the largest score + bias[e] (bias may be NULL; it only steers the choice,
 * DeepSeek-V3's balancing) into sel (N,K); gates (N,K) are the chosen scores (softmax) or the
 * chosen scores over their sum (sigmoid). Backward: dlogits (N,E) from dgate (N,K) and, for the
 * balance loss, aux_coef (E) = d loss / d p[n][e] (may be NULL), where p = scores (softmax) or
 * scores / their row sum (sigmoid). Written over, not added. */
void moe_route_forward(float *scores, int *sel, float *gate, const float *logits, const float *bias, size_t N,
                       size_t E, size_t K, int sigmoid);
void moe_route_backward(float *dlogits, const float *dgate, const float *aux_coef, const float *scores, const int *sel,
                        const float *gate, size_t N, size_t E, size_t K, int sigmoid);
/* load (E): rows routed to each expert. With aux_coef non-NULL also the balance loss
 * alpha * sum_e f_e P_e (f_e = E/(K N) load_e, P_e = mean_n p[n][e]), returned, and aux_coef (E)
 * = its gradient alpha f_e / N with respect to each p[n][e] (f is a count: no gradient). */
float moe_balance_forward(float *aux_coef, float *load, const float *scores, const int *sel, size_t N, size_t E,
                          size_t K, float alpha, int sigmoid);
/* Groups the N*K assignments (i = n*K + k) by expert, stably: order[j] is the assignment in row
 * j, pos[i] the row of assignment i, rows eoff[e]..eoff[e+1]-1 belong to expert e (E+1 ints). */
void moe_dispatch(int *order, int *pos, int *eoff, const int *sel, size_t N, size_t E, size_t K);
/* rows (N*K, C): row j = inp[order[j] / K]. Backward: dinp[n] += the rows of its K assignments. */
void moe_gather_forward(float *rows, const float *inp, const int *order, size_t NK, size_t K, size_t C);
void moe_gather_backward(float *dinp, const float *drows, const int *pos, size_t N, size_t K, size_t C);
/* out[n] += sum_k gate[n][k] * rows[pos[n*K + k]]. Backward writes drows (over) and dgate. */
void moe_combine_forward(float *out, const float *rows, const float *gate, const int *pos, size_t N, size_t K,
                         size_t C);
void moe_combine_backward(float *drows, float *dgate, const float *dout, const float *rows, const float *gate,
                          const int *pos, size_t N, size_t K, size_t C);
/* DeepSeek-V3's loss-free balancing, once per step: bias[e] += rate * sign(mean load - load[e]). */
void moe_bias_update(float *bias, const float *load, size_t E, float rate);

/* ---- multi-head latent attention (mla.c, DeepSeek-V2) ----
 * Keys and values of H heads of hd floats come up from a latent: kvu (N, H*(dn + hd)) holds per
 * head dn key floats then hd value floats; kr (N, dr) is one RoPE key shared by every head
 * (dn + dr = hd). Assembly writes the key and value parts of qkv rows (N, 3*H*hd) as the attention
 * kernels read them (head h's key = [its dn floats | kr], its value = its hd floats); the query
 * part is left alone. Backward: dkvu written over, dkr written over (the sum over heads). */
void mla_assemble_forward(float *qkv, const float *kvu, const float *kr, size_t N, size_t H, size_t hd, size_t dn);
void mla_assemble_backward(float *dkvu, float *dkr, const float *dqkv, size_t N, size_t H, size_t hd, size_t dn);
/* Decoding in the absorbed form: one query q (H*hd, RoPE applied) against T cached latents
 * lat (T, R) (normalised, before the up-projection) and RoPE keys kr (T, dr), with wukv
 * (H*(dn + hd), R). Scores q_nope.(W_uk lat) + q_rope.kr over sqrt(hd), softmax, then each
 * head's value is W_uv (sum_t p_t lat_t): the cache never holds per-head keys or values. Equals the
 * batched attention's last row. scratch: 2*H*R floats; att (H, T). Inference only. */
void mla_decode_forward(float *out, float *att, float *scratch, const float *q, const float *lat, const float *kr,
                        const float *wukv, size_t T, size_t H, size_t hd, size_t dn, size_t R);

/* ---- normalisation over the last dimension ---- */
/* LayerNorm (Ba et al. 2016): out = (x - mean) * rstd * w + b. Saves mean, rstd (N). b may be NULL. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, size_t N, size_t C, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, size_t N, size_t C);
/* RMSNorm (Zhang & Sennrich 2019): out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, size_t N, size_t C,
                     float eps);
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, size_t N, size_t C);
/* QK-norm (Dehghani et al. 2023; Wortsman et al. 2023): RMSNorm of each query head with qw (hd)
 * and each key head with kw (hd) inside fused qkv rows (N, (H + 2*Hkv) * hd); values are copied.
 * Saves rstd (N, H + Hkv). */
void qknorm_forward(float *out, float *rstd, const float *inp, const float *qw, const float *kw, size_t N,
                    size_t H, size_t Hkv, size_t hd, float eps);
/* The backward writes over dinp (the norm is its input's only consumer); dqw, dkw are added to. */
void qknorm_backward(float *dinp, float *dqw, float *dkw, const float *dout, const float *inp, const float *qw,
                     const float *kw, const float *rstd, size_t N, size_t H, size_t Hkv, size_t hd);

/* ---- activations, elementwise over n values ----
 * Their backwards take a GradWrite, like linear_backward: an MLP's activation gradient has one
 * contribution and is written over (GRAD_SET), with no zeroing pass first. */
/* GELU, tanh approximation (Hendrycks & Gimpel 2016), as GPT-2. */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n);
void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n);
/* ReLU squared (So et al. 2021, "Primer"). */
void relu2_forward(float *out, const float *inp, size_t n);
void relu2_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n);
/* Gated units (Shazeer 2020): inp rows (N, 2F) = [gate | up], out (N, F) = act(gate) * up,
 * with act = SiLU for SwiGLU and GELU(tanh) for GeGLU. */
void swiglu_forward(float *out, const float *inp, size_t N, size_t F);
void swiglu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N, size_t F);
void geglu_forward(float *out, const float *inp, size_t N, size_t F);
void geglu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N, size_t F);

/* ---- z-loss (PaLM, Chowdhery et al. 2022): z * (log Z)^2 per position, Z = sum exp(logits) ----
 * Forward: logz (N) from logits (before the softmax overwrites them). Its gradient is
 * 2 z logz[n] softmax[n], at the cross-entropy's scale: the backward folds it into the
 * probabilities, probs[n] *= 1 + 2 z logz[n] at positions with a target, just before
 * crossentropy_softmax_backward turns them into dlogits in place. */
void zloss_forward(float *logz, const float *logits, size_t N, size_t V);
void zloss_backward(float *probs, const float *logz, const int *targets, float z, size_t N, size_t V);

/* ---- residual: out = a + b ---- */
void residual_forward(float *out, const float *a, const float *b, size_t n);
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- causal self-attention with grouped key/value heads ----
 * qkv (B,T,(H+2*Hkv)*hd): per row the H query heads, then Hkv key heads, then Hkv value heads.
 * Query head h reads key/value head h / (H/Hkv): Hkv = H is MHA, 1 < Hkv < H is GQA (Ainslie et
 * al. 2023), Hkv = 1 is MQA (Shazeer 2019). out (B,T,H*hd). att (B,H,T,T) is what the forward
 * saves for the backward of the same path. The per-head products run on AVX-512 register tiles
 * (attention_tiles.h) for head widths 16-64 in steps of 16 where the CPU has AVX-512, otherwise as
 * GEMMs (gemm.h). On the tiles without a window, each head's region holds its rows' maximum scores
 * (T floats) then their 1 / sum (T floats), and the backward recomputes the probabilities from them
 * (bit for bit); otherwise it holds the softmax probabilities, with zeros above the diagonal at
 * least up to the end of each row's block of 64 queries (the backward's products read those), and
 * either backward accepts the reference forward's probabilities.
 * scratch holds attention_scratch_floats(T, hd) floats per thread (omp_get_max_threads()). */
size_t attention_scratch_floats(size_t T, size_t hd);
/* window > 0: a sliding window, query i sees keys [i - window + 1, i] (Child et al. 2019; Beltagy et
 * al. 2020); key blocks entirely outside it are skipped. 0: every earlier key. slopes (H) or NULL:
 * ALiBi (Press et al. 2022), head h's score of query i for key j gets -slopes[h] * (i - j) before the
 * softmax; the backward takes the same slopes, to recompute the scores. */
void attention_forward(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T, size_t H,
                       size_t Hkv, size_t hd, size_t window, const float *slopes);
/* ALiBi's slopes for H heads: 2^(-8 (h+1) / H). */
void alibi_slopes(float *slopes, size_t H);
/* out: the forward's output (the tiles take sum_j P dP as dO . O from it). dqkv (B*T, (H + 2 Hkv) hd) is
 * written over, every entry: the caller needs no zeroing pass. */
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                        const float *att, size_t B, size_t T, size_t H, size_t Hkv, size_t hd, size_t window,
                        const float *slopes);

/* One query row against a key/value cache (decoding): q (H*hd), the query of position T-1, attends
 * to the T keys and values of positions 0..T-1, rows of kc and vc (T, Hkv*hd) `ld` floats apart.
 * out (H*hd); att (H, T) the probabilities. Same head mapping, scale and softmax as
 * attention_forward, of which it computes the last row. Inference only: no backward. */
void attention_decode_forward(float *out, float *att, const float *q, const float *kc, const float *vc, size_t T,
                              size_t H, size_t Hkv, size_t hd, size_t ld, const float *slopes);

/* Simple references of the attention kernels (reference.c): same arguments, same results up to
 * rounding (the fast kernels use ap_expf and a different summation order). */
void attention_forward_ref(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T,
                           size_t H, size_t Hkv, size_t hd, size_t window, const float *slopes);
void attention_backward_ref(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                            size_t B, size_t T, size_t H, size_t Hkv, size_t hd);

/* ---- LSTM cell (Hochreiter & Schmidhuber 1997), gates in PyTorch's order i, f, g, o ----
 * B rows. gates (B, 4H) hold the pre-activations z = W_ih x + b + W_hh r_prev and become the
 * activations in place (the backward reads them): i, f, o = sigmoid, g = tanh. Then
 * c = f * c_prev + i * g, tc = tanh(c), h = o * tc. Rows of h, c, tc sit ld floats apart (gates
 * 4*ld), rows of c_prev ld_prev apart: one time step of a (B, T, .) layout reads ld = T*H.
 * c may alias c_prev (a decoder updates its state in place).
 * Backward: dh, dc (B, H) contiguous are the gradients reaching h and c from later computations;
 * it OVERWRITES dgates (B, 4H), rows 4*ld apart, with the gradient of z and dc_prev (B, H)
 * contiguous with that of c_prev; dc_prev may alias dc. */
void lstm_cell_forward(float *h, float *c, float *tc, float *gates, const float *c_prev, size_t B, size_t H, size_t ld,
                       size_t ld_prev);
void lstm_cell_backward(float *dgates, float *dc_prev, const float *dh, const float *dc, const float *gates,
                        const float *c_prev, const float *tc, size_t B, size_t H, size_t ld, size_t ld_prev);

/* ---- logit soft-capping (Gemma 2; modded-nanogpt): out = cap * tanh(inp / cap) ---- */
void softcap_forward(float *out, const float *inp, size_t n, float cap);
void softcap_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n, float cap);

/* ---- fused softmax + cross-entropy over V classes ----
 * Forward: losses (N) = -log softmax(logits)[target]; probs (N,V) = softmax (may alias logits).
 * Targets < 0 are ignored (loss 0, gradient 0). The caller sums losses in a fixed order (an
 * OpenMP reduction would combine partial sums in whatever order threads finish).
 * Backward OVERWRITES dlogits = (probs - onehot(target)) * dloss; dlogits may alias probs. */
void crossentropy_softmax_forward(float *losses, float *probs, const float *logits, const int *targets,
                                  size_t N, size_t V);
void crossentropy_softmax_backward(float *dlogits, const float *probs, const int *targets, float dloss, size_t N,
                                   size_t V);

/* ---- knowledge distillation (Hinton et al. 2015) ----
 * Soft targets q (N,V): a teacher's softmax at temperature T, q ∝ p_teacher^(1/T) from its
 * probabilities (distill_targets, in place allowed). The student's term per position is
 * T^2 KL(q || s), s = softmax(z/T) ∝ p^(1/T) from its probabilities p = softmax(z), so that its
 * gradient, T (s - q), stays at the cross-entropy's scale for any T.
 * Forward: losses (N) = T^2 KL(q || s), 0 where target < 0.
 * Backward: turns q IN PLACE into its gradient, q = weight * dloss * T * (s - q) (0 where
 * target < 0), to be added to the cross-entropy's dlogits (it must run while probs are still
 * the softmax). */
void distill_targets(float *q, const float *p, size_t N, size_t V, float T);
void distill_forward(float *losses, const float *probs, const float *q, const int *targets, size_t N, size_t V,
                     float T);
void distill_backward(float *q, const float *probs, const int *targets, float weight, float dloss, size_t N, size_t V,
                      float T);

#endif
