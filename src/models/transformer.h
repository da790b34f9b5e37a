/* transformer.h - a decoder-only Transformer language model assembled from switches.
 *
 * One struct holds the weights (pointers into one parameter allocation, see params.h), the
 * activations saved for the backward (one allocation, sized for a batch shape by
 * transformer_prepare), and the backward's scratch buffers. Switches (config.h) choose rows of
 * the parameter table and branches inside forward/backward; they never fork the model.
 *
 * Block, pre-norm (GPT-2 and later):  x = x + attn(norm1(x));  x = x + mlp(norm2(x));  final norm
 * Block, post-norm (Vaswani 2017):    x = norm1(x + attn(x));  x = norm2(x + mlp(x))
 * attn: fused QKV projection -> optional QK-norm -> optional RoPE -> causal softmax attention
 *       with n_kv_heads key/value heads -> output projection
 * mlp:  fc -> activation (or gated unit) -> projection; with moe_experts, the last layer of every
 *       moe_every is a mixture of experts instead (moe_block.c): a router sends each token to
 *       moe_top_k of moe_experts expert MLPs, plus moe_shared_experts every token goes through */
#ifndef AP_TRANSFORMER_H
#define AP_TRANSFORMER_H

#include "core/rng.h"
#include "core/status.h"
#include "config/config.h"
#include "core/params.h"

typedef struct {
    float *wte;            /* (V, C) */
    float *wpe;            /* (T, C)         pos=learned */
    float *ln1_w, *ln1_b;  /* (L, C)         ln1_b: layernorm with bias */
    float *wqkv;           /* (L, QKV, C)    QKV = (H + 2*Hkv) * hd */
    float *bqkv;           /* (L, QKV)       bias */
    float *q_norm, *k_norm;/* (L, hd)        qk_norm */
    float *mla_wq;         /* (L, H*hd, C)   attention = mla: queries (q_lora_rank = 0) */
    float *mla_wdq;        /* (L, Rq, C)     or through a latent: down, */
    float *mla_q_norm;     /* (L, Rq)        its RMSNorm gain, */
    float *mla_wuq;        /* (L, H*hd, Rq)  up */
    float *mla_wdkv;       /* (L, R, C)      the key/value latent */
    float *mla_kv_norm;    /* (L, R)         its RMSNorm gain */
    float *mla_wukv;       /* (L, H*(dn+hd), R) its up-projection: per head dn key rows, then hd value rows */
    float *mla_wkr;        /* (L, dr, C)     the RoPE key shared by the heads */
    float *wo;             /* (L, C, C) */
    float *bo;             /* (L, C)         bias */
    float *ln2_w, *ln2_b;  /* (L, C) */
    float *wfc;            /* (Ld, F1, C)    dense MLP layers; F1 = 2F for gated units, else F */
    float *bfc;            /* (Ld, F1)       bias */
    float *wproj;          /* (Ld, C, F) */
    float *bproj;          /* (Ld, C)        bias */
    float *router;         /* (Lm, E, C)     MoE layers: router */
    float *moe_bias;       /* (Lm, E)        moe_balance = bias: added to scores for the choice only (state) */
    float *moe_w1;         /* (Lm*E, Fe1, C) routed experts' fc; Fe1 = 2Fe gated */
    float *moe_w2;         /* (Lm*E, C, Fe)  routed experts' projection */
    float *moe_ws1;        /* (Lm, S*Fe1, C) shared experts' fc, as one MLP (gated: S*Fe gate rows, then up) */
    float *moe_ws2;        /* (Lm, C, S*Fe) */
    float *lnf_w, *lnf_b;  /* (C)            pre-norm only */
    float *mtp_hnorm;      /* (D, C)         multi-token prediction: norm of the previous depth's hidden state, */
    float *mtp_enorm;      /* (D, C)         of the next token's embedding, */
    float *mtp_proj;       /* (D, C, 2C)     their projection to the module's block (layer L + k - 1), */
    float *mtp_lnf;        /* (D, C)         and the norm before the shared head */
    float *head;           /* (V, C)         untied only */
    float *ve;             /* (Lve, V, Hkv*hd) value embeddings of the first Lve = value_embeds layers */
    float *ve_lambda;      /* (Lve, 2)       mixing scalars: v = l0 * v + l1 * ve[token] */
    float *skip_w;         /* (Us)           unet_skips: decoder layer Le + i adds skip_w[i] x (encoder Le-1-i's output) */
} TransformerWeights;

typedef struct {
    float *encoded;               /* (B, T, C) */
    float *ln1, *ln1_mean, *ln1_rstd; /* (L, B, T, C), (L, B, T) x2 */
    float *qkv;                   /* (L, B, T, QKV) */
    float *qkvp;                  /* (L, B, T, QKV) after QK-norm / RoPE / value mixing (when any is on) */
    float *qk_rstd;               /* (L, B, T, H + Hkv) */
    float *mla_cq_raw, *mla_cq, *mla_cq_rstd;   /* (L, N, Rq) x2, (L, N) */
    float *mla_ckv_raw, *mla_ckv, *mla_kv_rstd; /* (L, N, R) x2, (L, N) */
    float *mla_kvu;                             /* (L, N, H*(dn+hd)) */
    float *mla_kr;                              /* (L, N, dr) */
    float *att;                   /* (L, B, H, T, T) softmax probabilities */
    float *atty;                  /* (L, B, T, C) attention output before projection */
    float *res2;                  /* (L, B, T, C) residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch;                   /* (Ld, B, T, F1) MLP pre-activation */
    float *fcg;                   /* (Ld, B, T, F) MLP activation */
    /* MoE layers (blocks.h, MoeActs), (Lm, ...) each; sel, order, pos, eoff hold ints */
    float *moe_rlog, *moe_rsc;    /* (Lm, N, E) */
    float *moe_sel, *moe_gate;    /* (Lm, N, K) */
    float *moe_order, *moe_pos;   /* (Lm, N*K) */
    float *moe_eoff;              /* (Lm, E+1) */
    float *moe_xin, *moe_ey;      /* (Lm, N*K, C) */
    float *moe_eh, *moe_eg;       /* (Lm, N*K, Fe1), (Lm, N*K, Fe) */
    float *moe_sh, *moe_sg;       /* (Lm, N, S*Fe1), (Lm, N, S*Fe) */
    float *res3;                  /* (L, B, T, C) residual after MLP */
    float *skip_in;               /* (Us, B, T, C) unet_skips: decoder layer Le + i's input, skip added */
    float *dskip;                 /* (Us, B, T, C) d (encoder layer k's output) from its skip, added when reached */
    float *lnf, *lnf_mean, *lnf_rstd; /* (B, T, C), (B, T) x2  pre-norm only */
    float *logits_raw;            /* (B, T, V) before the soft-cap (softcap only) */
    float *probs;                 /* (B, T, V) logits, then probabilities, then their gradient */
    float *losses;                /* (B, T) */
    float *logz;                  /* (B, T) z_loss: log of each position's softmax normaliser */
    /* backward scratch */
    float *dres, *dx1, *dx2;      /* (B, T, C) */
    float *dqkv, *dqkvp;          /* (B, T, QKV) */
    float *datty;                 /* (B, T, C) */
    float *dfch;                  /* (B, T, F1) */
    float *dfcg;                  /* (B, T, F) */
    float *mla_dcq, *mla_dcq_raw; /* (N, Rq) */
    float *mla_dckv, *mla_dckv_raw; /* (N, R) */
    float *mla_dkvu;              /* (N, H*(dn+hd)) */
    float *mla_dkr;               /* (N, dr) */
    float *moe_drows, *moe_dxin;  /* (N*K, C) */
    float *moe_deg, *moe_deh;     /* (N*K, Fe), (N*K, Fe1) */
    float *moe_dsg, *moe_dsh;     /* (N, S*Fe), (N, S*Fe1) */
    float *moe_dgate;             /* (N, K) */
    float *moe_drlog;             /* (N, E) */
    float *moe_coef;              /* (2E) balance loss gradient per normalised score, then load scratch */
    float *dlogits_raw;           /* (B, T, V) softcap only */
    float *attn_scratch;          /* (threads, attention_scratch_floats(T, hd)) */
    /* multi-token prediction, (D, ...) each, rows B*(T - k) used of depth k's B*T (MtpActs) */
    float *mtp_hp, *mtp_hn, *mtp_hn_mean, *mtp_hn_rstd; /* (D, N, C), (D, N, C), (D, N) x2 */
    float *mtp_e, *mtp_en, *mtp_en_mean, *mtp_en_rstd;  /* the same for the embeddings */
    float *mtp_cat;                                     /* (D, N, 2C) */
    float *mtp_x;                                       /* (D, N, C) the block's input */
    float *mtp_fo, *mtp_fo_mean, *mtp_fo_rstd;          /* (D, N, C), (D, N) x2 the head's input */
    float *mtp_dhead;                                   /* (D, N, C) d block output from the head */
    float *mtp_tokens, *mtp_targets;                    /* (D, N) ints */
    float *mtp_losses;                                  /* (N) */
    float *mtp_scratch;                                 /* (7, N, C) backward buffers */
} TransformerActs;

/* Matmul-class FLOPs of one step (2 per multiply-add), exactly as executed: linear layers, the
 * causal attention products (only the visible keys) and the LM head. Norms, activations,
 * softmax and elementwise optimiser work are O(BTC) and not counted (see docs/ARCHITECTURE.md). */
typedef struct {
    double forward, backward;
    double optimizer; /* filled by the trainer: Muon's orthogonalisation products, else 0 */
} StepFlops;

typedef struct {
    Config cfg; /* resolved */
    int C, L, H, Hkv, hd, F, F1, QKV, V, Tmax, Lve;
    int Le, Us; /* unet_skips: encoder layers L/2, and the skips (Le; 0 without) */
    int mla, R, Rq, dr;        /* attention = mla: latent widths and the RoPE part of a head (dn = hd - dr) */
    int D, Lt;                 /* multi-token prediction modules; Lt = L + D layers of block weights */
    int E, K, S, Fe, Fe1, Lm, Ld, moe_every; /* mixture of experts (E = 0: none); Lm MoE and Ld dense layers */
    ParamSet ps;
    TransformerWeights w, g;
    /* activations, sized by transformer_prepare */
    TransformerActs a;
    float *acts_mem;
    size_t acts_numel;
    size_t acts_cap, tokens_cap; /* what acts_mem and inputs/targets hold: smaller shapes reuse them */
    int B, T;
    float *rope_cos, *rope_sin; /* (Tmax, hd/2) */
    float *alibi;               /* (H) pos = alibi: each head's slope */
    int *inputs, *targets;      /* (B, T) copies of the last batch */
    float mean_loss;
    /* knowledge distillation for the next backward (transformer_set_distill): soft targets (N, V),
     * consumed (turned into their gradient) by it; NULL: none */
    float *distill_q;
    float distill_weight, distill_T;
    float aux_loss;  /* the last forward's MoE balance loss (in the gradient, not in mean_loss) */
    float zloss;     /* the last forward's z_loss term (likewise) */
    float mtp_loss;  /* the last backward's mtp_weight x mean multi-token loss (in the gradient) */
    float *moe_load; /* (Lm, E) tokens per expert in the last forward with targets */
    int have_targets;
} Transformer;

/* Layer l is a mixture of experts (the last of each group of moe_every layers); its index among
 * the MoE layers, or among the dense ones. */
static inline int transformer_is_moe(const Transformer *m, size_t l) {
    return m->E > 0 && (int)(l % (size_t)m->moe_every) == m->moe_every - 1;
}
static inline size_t transformer_moe_index(const Transformer *m, size_t l) { return l / (size_t)m->moe_every; }
static inline size_t transformer_dense_index(const Transformer *m, size_t l) {
    return m->E > 0 ? l - l / (size_t)m->moe_every : l;
}

/* Builds the parameter table for cfg (resolved, vocab set), allocates and initialises weights
 * from rng. The struct must stay at one address afterwards (slots point into it). */
int transformer_create(Transformer *m, const Config *cfg, Rng *rng, Status *st);
/* Allocates activations for batches of B sequences of T <= context tokens. */
int transformer_prepare(Transformer *m, int B, int T, Status *st);
/* Floats transformer_prepare allocates for batch B x T, without building the model. */
size_t transformer_activation_floats(const Config *cfg, int B, int T);
/* Forward pass. With targets, returns the mean cross-entropy (nats/token) and keeps what the
 * backward needs; without (NULL), leaves logits in a.probs and returns 0. */
float transformer_forward(Transformer *m, const int *inputs, const int *targets, int B, int T);
/* Backward of the last forward with targets (its loss plus the MoE balance loss); accumulates
 * into the gradient arena. */
void transformer_backward(Transformer *m);
/* The multi-token prediction modules' forward on the last forward's batch: returns their loss
 * (mtp_weight x the mean over depths of each depth's mean cross-entropy); the backward runs it
 * itself. For tests: the loss the backward differentiates is forward + aux_loss + this. */
float transformer_mtp_loss(Transformer *m);
/* After an optimiser step: moe_balance = bias moves the router biases by the step's loads
 * (m->moe_load, summed over data-parallel ranks by the caller). */
void transformer_end_step(Transformer *m);
/* Bytes of KV cache one token needs at inference, over all layers (fp32): 2*Hkv*hd floats a layer
 * (MHA, GQA, MQA), kv_lora_rank + rope_head_dim with attention = mla. */
double transformer_kv_bytes_per_token(const Config *cfg);
/* Parameters a token goes through (the routed experts it is not sent to left out). */
size_t transformer_active_params(const Config *cfg);
void transformer_free(Transformer *m);
StepFlops transformer_step_flops(const Config *cfg, int B, int T);
/* muP's width ratio base/d_model (mup_base_width), 1 without muP: the logit multiplier and the
 * scale of hidden matrices' learning rates. */
double transformer_mup_ratio(const Config *cfg);
/* The next backward trains on (1 - weight) cross-entropy + weight T^2 KL(q || softmax(z/T)) at
 * the main head (ops.h, distillation); q (B*T, V) is the teacher's tempered softmax, which the
 * backward overwrites. */
void transformer_set_distill(Transformer *m, float *q, float weight, float T);
/* The parameter table of a (resolved) config, without allocating values (slots are not usable). */
void transformer_param_table(const Config *cfg, ParamSet *out);
/* Parameters excluding token/position embeddings (the head counts when untied). */
size_t transformer_total_params(const Transformer *m);

/* ---- incremental decoding with a key/value cache ---- */
typedef struct {
    int Tmax;
    float *k, *v; /* (L, Tmax, Hkv*hd) keys after QK-norm and RoPE, values after mixing; attention = mla:
                   * (L, Tmax, R) normalised latents and (L, Tmax, dr) rotated RoPE keys */
    float *mla_scratch;                /* (2*H*R) mla decoding */
    float *mla_cq_raw, *mla_cq, *mla_cq_rstd, *mla_ckv_raw, *mla_ckv, *mla_kv_rstd, *mla_kr; /* one token's */
    /* one token's activations, the TransformerActs slots at N = 1, reused by every layer */
    float *x;                          /* (C) the block input */
    float *skip_h;                     /* (Le, C) unet_skips: the encoder layers' outputs at this token */
    float *ln1, *ln1_mean, *ln1_rstd;  /* (C), (1), (1) */
    float *qkv, *qkvp, *qk_rstd;       /* (QKV), (QKV), (H + Hkv) */
    float *att;                        /* (H, Tmax) */
    float *atty, *res2;                /* (C) */
    float *ln2, *ln2_mean, *ln2_rstd;  /* (C), (1), (1) */
    float *fch, *fcg, *res3;           /* (F1), (F), (C) */
    float *moe_rlog, *moe_rsc;         /* MoE layers at one token: (E), (E) */
    float *moe_sel, *moe_gate, *moe_order, *moe_pos; /* (K) each */
    float *moe_eoff;                   /* (E+1) */
    float *moe_xin, *moe_ey;           /* (K, C) */
    float *moe_eh, *moe_eg;            /* (K, Fe1), (K, Fe) */
    float *moe_sh, *moe_sg;            /* (S*Fe1), (S*Fe) */
    float *lnf, *lnf_mean, *lnf_rstd;  /* (C), (1), (1) */
    float *logits_raw;                 /* (V) softcap only */
    float *logits;                     /* (V) */
    float *mem;
} KVCache;

int kvcache_create(KVCache *kv, const Transformer *m, Status *st);
void kvcache_free(KVCache *kv);
/* Feeds token at position pos (0 <= pos < context); writes logits (V) into kv->logits. */
void transformer_forward_token(const Transformer *m, KVCache *kv, int token, int pos);

#endif
