/* transformer.c - the switchable Transformer: parameters, activations, and the stacking of
 * blocks (embeddings, norms, residuals, head) in the forward, the backward and cached decoding.
 * The sub-layers are in attention_block.c, mlp_block.c and moe_block.c (see blocks.h). Decoding runs the
 * training forward's code at one row, with only the attention kernel swapped for the cache's.
 * The backward is the forward read bottom-up; each step names the forward line it undoes. */
#include "models/transformer.h"

#include "kernels/ops.h"
#include "models/blocks.h"
#include "models/layout.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- parameters */

static void mup_scale_params(ParamSet *ps, double r);

static void declare_params(Transformer *m) {
    const Config *c = &m->cfg;
    ParamSet *ps = &m->ps;
    TransformerWeights *w = &m->w, *g = &m->g;
    /* block tensors stack the main layers and the multi-token prediction modules' blocks */
    size_t C = (size_t)m->C, L = (size_t)m->Lt, V = (size_t)m->V, T = (size_t)m->Tmax;
    size_t QKV = (size_t)m->QKV, F = (size_t)m->F, F1 = (size_t)m->F1, hd = (size_t)m->hd;
    int xavier = c->init == INIT_XAVIER;
    float std = (float)c->init_std;
    float proj_std = c->init == INIT_GPT2 ? std / sqrtf(2.0f * (float)m->L) : std;
    int mat = xavier ? PINIT_UNIFORM : PINIT_NORMAL;
    int proj_init = c->zero_init_proj ? PINIT_ZEROS : mat;
    size_t kvd = (size_t)m->Hkv * hd;
    /* Xavier/Glorot bound sqrt(6 / (fan_in + fan_out)); q, k, v count as separate C x C maps. */
#define XB(fi, fo) sqrtf(6.0f / (float)((fi) + (fo)))
    float emb_std = xavier ? 1.0f / sqrtf((float)C) : std;
    int ln_bias = c->norm == NORM_LAYERNORM && c->bias;

    paramset_add(ps, "wte", &w->wte, &g->wte, PGROUP_EMBED, PINIT_NORMAL, emb_std, V, C, 0);
    if (c->pos == POS_LEARNED) paramset_add(ps, "wpe", &w->wpe, &g->wpe, PGROUP_EMBED, PINIT_NORMAL, emb_std, T, C, 0);
    paramset_add(ps, "ln1_w", &w->ln1_w, &g->ln1_w, PGROUP_VECTOR, PINIT_ONES, 0, L, C, 0);
    if (ln_bias) paramset_add(ps, "ln1_b", &w->ln1_b, &g->ln1_b, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    if (m->mla) { /* no biases, as DeepSeek-V2 */
        size_t H = (size_t)m->H, R = (size_t)m->R, Rq = (size_t)m->Rq, dr = (size_t)m->dr, U = H * (hd - dr + hd);
        if (Rq) {
            paramset_add(ps, "mla_wdq", &w->mla_wdq, &g->mla_wdq, PGROUP_MATRIX, mat, xavier ? XB(C, Rq) : std, L, Rq, C);
            paramset_add(ps, "mla_q_norm", &w->mla_q_norm, &g->mla_q_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, Rq, 0);
            paramset_add(ps, "mla_wuq", &w->mla_wuq, &g->mla_wuq, PGROUP_MATRIX, mat, xavier ? XB(Rq, C) : std, L,
                         H * hd, Rq);
        } else {
            paramset_add(ps, "mla_wq", &w->mla_wq, &g->mla_wq, PGROUP_MATRIX, mat, xavier ? XB(C, C) : std, L, H * hd, C);
        }
        paramset_add(ps, "mla_wdkv", &w->mla_wdkv, &g->mla_wdkv, PGROUP_MATRIX, mat, xavier ? XB(C, R) : std, L, R, C);
        paramset_add(ps, "mla_kv_norm", &w->mla_kv_norm, &g->mla_kv_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, R, 0);
        paramset_add(ps, "mla_wukv", &w->mla_wukv, &g->mla_wukv, PGROUP_MATRIX, mat, xavier ? XB(R, C) : std, L, U, R);
        paramset_add(ps, "mla_wkr", &w->mla_wkr, &g->mla_wkr, PGROUP_MATRIX, mat, xavier ? XB(C, dr) : std, L, dr, C);
    } else {
        paramset_add(ps, "wqkv", &w->wqkv, &g->wqkv, PGROUP_MATRIX, mat, xavier ? XB(C, C) : std, L, QKV, C);
        size_t qkv_rows[3] = {(size_t)m->H * hd, kvd, kvd};
        paramset_set_blocks(ps, 3, qkv_rows);
        if (c->bias) paramset_add(ps, "bqkv", &w->bqkv, &g->bqkv, PGROUP_VECTOR, PINIT_ZEROS, 0, L, QKV, 0);
    }
    if (c->qk_norm) {
        paramset_add(ps, "q_norm", &w->q_norm, &g->q_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, hd, 0);
        paramset_add(ps, "k_norm", &w->k_norm, &g->k_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, hd, 0);
    }
    paramset_add(ps, "wo", &w->wo, &g->wo, PGROUP_MATRIX, proj_init, xavier ? XB(C, C) : proj_std, L, C, C);
    if (c->bias) paramset_add(ps, "bo", &w->bo, &g->bo, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    if (!c->parallel_block) { /* a parallel block's MLP reads ln1 */
        paramset_add(ps, "ln2_w", &w->ln2_w, &g->ln2_w, PGROUP_VECTOR, PINIT_ONES, 0, L, C, 0);
        if (ln_bias) paramset_add(ps, "ln2_b", &w->ln2_b, &g->ln2_b, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    }
    size_t Ld = (size_t)m->Ld;
    if (Ld > 0) {
        paramset_add(ps, "wfc", &w->wfc, &g->wfc, PGROUP_MATRIX, mat, xavier ? XB(C, F) : std, Ld, F1, C);
        if (F1 == 2 * F) {
            size_t glu_rows[2] = {F, F};
            paramset_set_blocks(ps, 2, glu_rows);
        }
        if (c->bias) paramset_add(ps, "bfc", &w->bfc, &g->bfc, PGROUP_VECTOR, PINIT_ZEROS, 0, Ld, F1, 0);
        paramset_add(ps, "wproj", &w->wproj, &g->wproj, PGROUP_MATRIX, proj_init, xavier ? XB(F, C) : proj_std, Ld, C,
                     F);
        if (c->bias) paramset_add(ps, "bproj", &w->bproj, &g->bproj, PGROUP_VECTOR, PINIT_ZEROS, 0, Ld, C, 0);
    }
    if (m->E > 0) { /* the MoE layers: router, its bias (state), routed experts, shared experts */
        size_t Lm = (size_t)m->Lm, E = (size_t)m->E, Fe = (size_t)m->Fe, Fe1 = (size_t)m->Fe1, SF = (size_t)m->S * Fe;
        paramset_add(ps, "router", &w->router, &g->router, PGROUP_MATRIX, mat, xavier ? XB(C, E) : std, Lm, E, C);
        if (c->moe_balance == MOE_BALANCE_BIAS)
            paramset_add(ps, "moe_bias", &w->moe_bias, &g->moe_bias, PGROUP_STATE, PINIT_ZEROS, 0, Lm, E, 0);
        paramset_add(ps, "moe_w1", &w->moe_w1, &g->moe_w1, PGROUP_MATRIX, mat, xavier ? XB(C, Fe) : std, Lm * E, Fe1, C);
        if (Fe1 == 2 * Fe) {
            size_t glu_rows[2] = {Fe, Fe};
            paramset_set_blocks(ps, 2, glu_rows);
        }
        paramset_add(ps, "moe_w2", &w->moe_w2, &g->moe_w2, PGROUP_MATRIX, proj_init, xavier ? XB(Fe, C) : proj_std,
                     Lm * E, C, Fe);
        if (SF > 0) {
            paramset_add(ps, "moe_ws1", &w->moe_ws1, &g->moe_ws1, PGROUP_MATRIX, mat, xavier ? XB(C, SF) : std, Lm,
                         Fe1 / Fe * SF, C);
            if (Fe1 == 2 * Fe) {
                size_t glu_rows[2] = {SF, SF};
                paramset_set_blocks(ps, 2, glu_rows);
            }
            paramset_add(ps, "moe_ws2", &w->moe_ws2, &g->moe_ws2, PGROUP_MATRIX, proj_init, xavier ? XB(SF, C) : proj_std,
                         Lm, C, SF);
        }
    }
    if (c->norm_position == NORMPOS_PRE) {
        paramset_add(ps, "lnf_w", &w->lnf_w, &g->lnf_w, PGROUP_VECTOR, PINIT_ONES, 0, C, 0, 0);
        if (ln_bias) paramset_add(ps, "lnf_b", &w->lnf_b, &g->lnf_b, PGROUP_VECTOR, PINIT_ZEROS, 0, C, 0, 0);
    }
    if (m->D > 0) {
        size_t D = (size_t)m->D;
        paramset_add(ps, "mtp_hnorm", &w->mtp_hnorm, &g->mtp_hnorm, PGROUP_VECTOR, PINIT_ONES, 0, D, C, 0);
        paramset_add(ps, "mtp_enorm", &w->mtp_enorm, &g->mtp_enorm, PGROUP_VECTOR, PINIT_ONES, 0, D, C, 0);
        paramset_add(ps, "mtp_proj", &w->mtp_proj, &g->mtp_proj, PGROUP_MATRIX, mat, xavier ? XB(2 * C, C) : std, D, C,
                     2 * C);
        paramset_add(ps, "mtp_lnf", &w->mtp_lnf, &g->mtp_lnf, PGROUP_VECTOR, PINIT_ONES, 0, D, C, 0);
    }
    if (!c->tie_embeddings)
        paramset_add(ps, "head", &w->head, &g->head, PGROUP_HEAD, proj_init, xavier ? XB(C, V) : std, V, C, 0);
    if (m->Lve > 0) {
        paramset_add(ps, "ve", &w->ve, &g->ve, PGROUP_EMBED, PINIT_NORMAL, emb_std, (size_t)m->Lve, V, kvd);
        paramset_add(ps, "ve_lambda", &w->ve_lambda, &g->ve_lambda, PGROUP_VECTOR, PINIT_CONST, 0.5f, (size_t)m->Lve,
                     2, 0);
    }
    if (m->Us > 0)
        paramset_add(ps, "skip_w", &w->skip_w, &g->skip_w, PGROUP_VECTOR, PINIT_ONES, 0, (size_t)m->Us, 0, 0);
#undef XB
    if (c->mup_base_width) mup_scale_params(ps, transformer_mup_ratio(c));
}

void transformer_set_distill(Transformer *m, float *q, float weight, float T) {
    m->distill_q = q, m->distill_weight = weight, m->distill_T = T;
}

double transformer_mup_ratio(const Config *c) {
    return c->mup_base_width ? (double)c->mup_base_width / c->d_model : 1.0;
}

/* muP (Tensor Programs V, Table 3, Adam column) with r = base/d_model. A matrix's role follows from
 * which of its dimensions grow with width: both (hidden), only the input (output-like: a fixed-size
 * output such as the router's scores), only the output (input-like: out of a fixed-size latent).
 * The head is output-like too, but it is scaled by the logit multiplier instead (the mup library's
 * readout), which also serves a head tied to the input embedding. */
static void mup_scale_params(ParamSet *ps, double r) {
    static const char *output_like[] = {"router", "mla_wdkv", "mla_wkr"};
    static const char *input_like[] = {"mla_wukv"};
    for (int i = 0; i < ps->n; i++) {
        ParamTensor *t = &ps->t[i];
        if (t->group != PGROUP_MATRIX) continue; /* embeddings, head, vectors: as in the base model */
        int role = 0; /* 0 hidden, 1 output-like, 2 input-like */
        for (size_t k = 0; k < sizeof output_like / sizeof *output_like; k++)
            if (!strcmp(t->name, output_like[k])) role = 1;
        for (size_t k = 0; k < sizeof input_like / sizeof *input_like; k++)
            if (!strcmp(t->name, input_like[k])) role = 2;
        if (role == 2) continue;
        t->init_scale *= (float)(role == 1 ? r : sqrt(r));
        t->lr_mult = (float)r;
    }
}

static void set_sizes(Transformer *m, const Config *cfg) {
    m->cfg = *cfg;
    m->C = cfg->d_model;
    m->L = cfg->n_layers;
    m->H = cfg->n_heads;
    m->Hkv = cfg->n_kv_heads;
    m->hd = m->C / m->H;
    m->F = cfg->d_ff;
    m->F1 = config_is_gated(cfg) ? 2 * m->F : m->F;
    m->QKV = (m->H + 2 * m->Hkv) * m->hd;
    m->V = cfg->vocab;
    m->Tmax = cfg->context;
    m->Lve = cfg->value_embeds;
    m->Le = cfg->n_layers / 2;
    m->Us = cfg->unet_skips ? m->Le : 0;
    m->mla = cfg->attention == ATTN_MLA;
    if (m->mla) {
        m->Hkv = m->H; /* every head has its own up-projected key and value */
        m->QKV = 3 * m->H * m->hd;
        m->R = cfg->kv_lora_rank, m->Rq = cfg->q_lora_rank, m->dr = cfg->rope_head_dim;
    }
    m->E = cfg->moe_experts;
    m->moe_every = cfg->moe_every > 0 ? cfg->moe_every : 1;
    m->D = cfg->mtp_depth;
    m->Lt = m->L + m->D;
    m->Lm = m->E > 0 ? m->Lt / m->moe_every : 0;
    m->Ld = m->Lt - m->Lm;
    m->K = m->E > 0 ? cfg->moe_top_k : 0;
    m->S = m->E > 0 ? cfg->moe_shared_experts : 0;
    m->Fe = m->E > 0 ? cfg->moe_d_ff : 0;
    m->Fe1 = config_is_gated(cfg) ? 2 * m->Fe : m->Fe;
}

void transformer_param_table(const Config *cfg, ParamSet *out) {
    Transformer *m = calloc(1, sizeof *m);
    if (!m) abort();
    set_sizes(m, cfg);
    declare_params(m); /* the table only: nothing is allocated */
    *out = m->ps;
    free(m);
}

int transformer_create(Transformer *m, const Config *cfg, Rng *rng, Status *st) {
    memset(m, 0, sizeof *m);
    if (cfg->vocab < 2) return status_fail(st, AP_EINVAL, "vocab=%d: the tokenizer must set it first", cfg->vocab);
    if (cfg->n_kv_heads <= 0 || cfg->d_ff <= 0)
        return status_fail(st, AP_EINTERNAL, "config was not resolved (n_kv_heads, d_ff)");
    set_sizes(m, cfg);
    declare_params(m);
    if (paramset_alloc(&m->ps, st)) return -1;
    paramset_init(&m->ps, rng);
    if (cfg->pos == POS_ROPE) { /* tables for the rotated part of a head: all of it, or MLA's dr */
        size_t rd = m->mla ? (size_t)m->dr : (size_t)m->hd, n = (size_t)m->Tmax * (rd / 2);
        m->rope_cos = floats_alloc(n);
        m->rope_sin = floats_alloc(n);
        if (!m->rope_cos || !m->rope_sin) {
            transformer_free(m);
            return status_fail(st, AP_ENOMEM, "cannot allocate RoPE tables");
        }
        RopeScaling rs = {cfg->rope_scaling, cfg->rope_factor,
                          cfg->rope_original_context ? cfg->rope_original_context : cfg->context / cfg->rope_factor};
        rope_tables(m->rope_cos, m->rope_sin, (size_t)m->Tmax, rd, (float)cfg->rope_base, &rs);
    }
    if (cfg->pos == POS_ALIBI) {
        if (!(m->alibi = floats_alloc((size_t)m->H))) {
            transformer_free(m);
            return status_fail(st, AP_ENOMEM, "cannot allocate the ALiBi slopes");
        }
        alibi_slopes(m->alibi, (size_t)m->H);
    }
    if (m->E > 0 && !(m->moe_load = floats_alloc((size_t)m->Lm * m->E))) {
        transformer_free(m);
        return status_fail(st, AP_ENOMEM, "cannot allocate the expert loads");
    }
    return 0;
}

double transformer_kv_bytes_per_token(const Config *c) {
    double per_layer = c->attention == ATTN_MLA ? (double)c->kv_lora_rank + c->rope_head_dim
                                                : 2.0 * (c->n_kv_heads ? c->n_kv_heads : c->n_heads) * config_head_dim(c);
    return 4.0 * c->n_layers * per_layer;
}

size_t transformer_active_params(const Config *cfg) {
    ParamSet ps;
    transformer_param_table(cfg, &ps);
    size_t n = 0;
    for (int i = 0; i < ps.n; i++) n += ps.t[i].numel;
    if (cfg->moe_experts > 0) { /* the routed experts a token is not sent to */
        size_t Lm = (size_t)((cfg->n_layers + cfg->mtp_depth) / (cfg->moe_every > 0 ? cfg->moe_every : 1));
        size_t Fe = (size_t)cfg->moe_d_ff, Fe1 = config_is_gated(cfg) ? 2 * Fe : Fe, C = (size_t)cfg->d_model;
        n -= Lm * (size_t)(cfg->moe_experts - cfg->moe_top_k) * (Fe1 * C + C * Fe);
    }
    return n;
}

size_t transformer_total_params(const Transformer *m) {
    size_t n = 0;
    for (int i = 0; i < m->ps.n; i++) n += m->ps.t[i].numel;
    return n;
}

/* Keys the T queries of a sequence see in all: T(T+1)/2, or with a window W < T, W(W+1)/2 + (T-W)W. */
static double visible_keys(int T, int W) {
    double t = T, w = W;
    return W <= 0 || W >= T ? t * (t + 1) / 2.0 : w * (w + 1) / 2.0 + (t - w) * w;
}

StepFlops transformer_step_flops(const Config *c, int B, int T) {
    double C = c->d_model, L = c->n_layers, H = c->n_heads, Hkv = c->n_kv_heads ? c->n_kv_heads : c->n_heads;
    double hd = C / H, F = c->d_ff, F1 = config_is_gated(c) ? 2 * F : F, V = c->vocab, N = (double)B * T;
    double QKV = (H + 2 * Hkv) * hd;
    /* MoE layers: the router, the K routed experts a token goes to and the shared ones */
    int every = c->moe_every > 0 ? c->moe_every : 1;
    double E = c->moe_experts, Fe = c->moe_d_ff, Fe1 = config_is_gated(c) ? 2 * Fe : Fe;
    double moe_macs = E > 0 ? C * E + (c->moe_top_k + c->moe_shared_experts) * (C * Fe1 + Fe * C) : 0;
    /* layer l's MLP (MoE or dense) per token; main layers are 0..L-1, MTP module k's block L+k-1 */
#define LAYER_MLP_MACS(l) (E > 0 && (l) % every == every - 1 ? moe_macs : C * F1 + F * C)
    double mlp_macs = 0;
    for (int l = 0; l < c->n_layers; l++) mlp_macs += LAYER_MLP_MACS(l) / L;
    double attn_lin = C * QKV + C * C;
    if (c->attention == ATTN_MLA) { /* queries (direct or through their latent), the latent, its up-projection */
        double R = c->kv_lora_rank, Rq = c->q_lora_rank, dr = c->rope_head_dim;
        attn_lin = (Rq > 0 ? C * Rq + Rq * H * hd : C * H * hd) + C * R + R * H * (hd - dr + hd) + C * dr + C * C;
    }
    double linear_macs = N * (attn_lin + mlp_macs);
    /* query t sees t+1 keys (at most window): for scores and for the value mix */
    double attn_macs = (double)B * H * hd * visible_keys(T, c->window) * 2.0;
    double head_macs = N * C * V;
    StepFlops f = {0};
    f.forward = 2.0 * (L * (linear_macs + attn_macs) + head_macs);
    /* multi-token prediction: module k works on the first T - k positions of each sequence */
    for (int k = 1; k <= c->mtp_depth; k++) {
        double Tk = T - k, Nk = (double)B * Tk;
        f.forward += 2.0 * (Nk * (2 * C * C + attn_lin + LAYER_MLP_MACS(c->n_layers + k - 1) + C * V) +
                            (double)B * H * hd * visible_keys(T - k, c->window) * 2.0);
    }
#undef LAYER_MLP_MACS
    f.backward = 2.0 * f.forward; /* each product has two gradient products of equal size */
    return f;
}

/* ---------------------------------------------------------------- activations */

/* The activation table, in one place for the allocation and the memory estimate: returns the
 * floats needed for batch B x T and, with mem non-NULL, points every slot into mem. */
static size_t acts_layout(Transformer *m, size_t B, size_t T, float *mem) {
    const Config *c = &m->cfg;
    size_t N = B * T, C = m->C, L = m->Lt, QKV = m->QKV, V = m->V, F = m->F, F1 = m->F1, D = m->D;
    size_t H = m->H, nqk = (size_t)(m->H + m->Hkv);
    size_t Ld = m->Ld, Lm = m->Lm, E = m->E, NK = N * (size_t)m->K, Fe = m->Fe, Fe1 = m->Fe1;
    size_t R = m->R, Rq = m->Rq, dr = m->dr, U = m->mla ? H * (m->hd - dr + m->hd) : 0;
    size_t SF = (size_t)m->S * Fe, SF1 = (size_t)m->S * Fe1;
    int pre = c->norm_position == NORMPOS_PRE, qkvp = c->qk_norm || c->pos == POS_ROPE || c->value_embeds > 0;
    TransformerActs *a = &m->a;
    LayoutSlot table[] = {
        {&a->encoded, N * C},
        {&a->ln1, L * N * C},
        {&a->ln1_mean, L * N},
        {&a->ln1_rstd, L * N},
        {&a->qkv, L * N * QKV},
        {&a->qkvp, qkvp && !m->mla ? L * N * QKV : 0},
        {&a->mla_cq_raw, L * N * Rq},
        {&a->mla_cq, L * N * Rq},
        {&a->mla_cq_rstd, Rq ? L * N : 0},
        {&a->mla_ckv_raw, L * N * R},
        {&a->mla_ckv, L * N * R},
        {&a->mla_kv_rstd, R ? L * N : 0},
        {&a->mla_kvu, L * N * U},
        {&a->mla_kr, L * N * dr},
        {&a->qk_rstd, c->qk_norm ? L * N * nqk : 0},
        {&a->att, L * B * H * (size_t)T * T},
        {&a->atty, L * N * C},
        {&a->res2, L * N * C},
        {&a->ln2, L * N * C},
        {&a->ln2_mean, L * N},
        {&a->ln2_rstd, L * N},
        {&a->fch, Ld * N * F1},
        {&a->fcg, Ld * N * F},
        {&a->moe_rlog, Lm * N * E},
        {&a->moe_rsc, Lm * N * E},
        {&a->moe_sel, Lm * NK},
        {&a->moe_gate, Lm * NK},
        {&a->moe_order, Lm * NK},
        {&a->moe_pos, Lm * NK},
        {&a->moe_eoff, Lm * (E + 1)},
        {&a->moe_xin, Lm * NK * C},
        {&a->moe_ey, Lm * NK * C},
        {&a->moe_eh, Lm * NK * Fe1},
        {&a->moe_eg, Lm * NK * Fe},
        {&a->moe_sh, Lm * N * SF1},
        {&a->moe_sg, Lm * N * SF},
        {&a->res3, L * N * C},
        {&a->skip_in, (size_t)m->Us * N * C},
        {&a->dskip, (size_t)m->Us * N * C},
        {&a->lnf, pre ? N * C : 0},
        {&a->lnf_mean, pre ? N : 0},
        {&a->lnf_rstd, pre ? N : 0},
        {&a->logits_raw, c->softcap > 0 ? N * V : 0},
        {&a->probs, N * V},
        {&a->losses, N},
        {&a->logz, c->z_loss > 0 ? N : 0},
        {&a->dres, N * C},
        {&a->dx1, N * C},
        {&a->dx2, N * C},
        {&a->dqkv, N * QKV},
        {&a->dqkvp, m->mla ? 0 : N * QKV},
        {&a->mla_dcq, N * Rq},
        {&a->mla_dcq_raw, N * Rq},
        {&a->mla_dckv, N * R},
        {&a->mla_dckv_raw, N * R},
        {&a->mla_dkvu, N * U},
        {&a->mla_dkr, N * dr},
        {&a->datty, N * C},
        {&a->dfch, Ld ? N * F1 : 0},
        {&a->dfcg, Ld ? N * F : 0},
        {&a->moe_drows, Lm ? NK * C : 0},
        {&a->moe_dxin, Lm ? NK * C : 0},
        {&a->moe_deg, Lm ? NK * Fe : 0},
        {&a->moe_deh, Lm ? NK * Fe1 : 0},
        {&a->moe_dsg, Lm ? N * SF : 0},
        {&a->moe_dsh, Lm ? N * SF1 : 0},
        {&a->moe_dgate, Lm ? NK : 0},
        {&a->moe_drlog, Lm ? N * E : 0},
        {&a->moe_coef, Lm ? 2 * E : 0},
        {&a->dlogits_raw, c->softcap > 0 ? N * V : 0},
        {&a->attn_scratch, (size_t)omp_get_max_threads() * attention_scratch_floats((size_t)T, (size_t)m->hd)},
        {&a->mtp_hp, D * N * C},
        {&a->mtp_hn, D * N * C},
        {&a->mtp_hn_mean, D * N},
        {&a->mtp_hn_rstd, D * N},
        {&a->mtp_e, D * N * C},
        {&a->mtp_en, D * N * C},
        {&a->mtp_en_mean, D * N},
        {&a->mtp_en_rstd, D * N},
        {&a->mtp_cat, D * N * 2 * C},
        {&a->mtp_x, D * N * C},
        {&a->mtp_fo, D * N * C},
        {&a->mtp_fo_mean, D * N},
        {&a->mtp_fo_rstd, D * N},
        {&a->mtp_dhead, D * N * C},
        {&a->mtp_tokens, D * N},
        {&a->mtp_targets, D * N},
        {&a->mtp_losses, D ? N : 0},
        {&a->mtp_scratch, D ? 7 * N * C : 0},
    };
    return layout_carve(table, sizeof table / sizeof table[0], mem);
}

size_t transformer_activation_floats(const Config *cfg, int B, int T) {
    Transformer *m = calloc(1, sizeof *m);
    if (!m) abort();
    set_sizes(m, cfg);
    size_t n = acts_layout(m, (size_t)B, (size_t)T, NULL);
    free(m);
    return n;
}

int transformer_prepare(Transformer *m, int B, int T, Status *st) {
    if (B < 1 || T < 1 || T > m->Tmax)
        return status_fail(st, AP_EINVAL, "batch shape %dx%d: need B >= 1 and 1 <= T <= context %d", B, T, m->Tmax);
    if (m->acts_mem && B == m->B && T == m->T) return 0;
    size_t n_tok = (size_t)B * T, need = acts_layout(m, (size_t)B, (size_t)T, NULL);
    if (m->acts_mem && need <= m->acts_cap && n_tok <= m->tokens_cap) {
        /* a smaller shape (a curriculum's step, or back to evaluation's) in the same memory, zeroed as
         * a fresh allocation would be, so results never depend on the shapes that came before */
        memset(m->acts_mem, 0, need * sizeof(float));
        acts_layout(m, (size_t)B, (size_t)T, m->acts_mem);
        m->acts_numel = need;
        m->B = B, m->T = T;
        return 0;
    }
    free(m->acts_mem);
    free(m->inputs);
    free(m->targets);
    size_t N = (size_t)B * T, total = acts_layout(m, (size_t)B, (size_t)T, NULL);
    m->acts_mem = floats_alloc(total);
    m->inputs = malloc(N * sizeof(int));
    m->targets = malloc(N * sizeof(int));
    if (!m->acts_mem || !m->inputs || !m->targets) {
        free(m->acts_mem);
        free(m->inputs);
        free(m->targets);
        m->acts_mem = NULL;
        m->inputs = m->targets = NULL;
        return status_fail(st, AP_ENOMEM, "cannot allocate activations for batch %dx%d (%.1f MB)", B, T,
                           total * 4.0 / 1e6);
    }
    acts_layout(m, (size_t)B, (size_t)T, m->acts_mem);
    m->acts_numel = m->acts_cap = total;
    m->tokens_cap = N;
    m->B = B;
    m->T = T;
    return 0;
}

/* ---------------------------------------------------------------- forward */

static void norm_forward(const Config *c, float *out, float *mean, float *rstd, const float *inp, const float *w,
                         const float *b, size_t N, size_t C) {
    if (c->norm == NORM_LAYERNORM)
        layernorm_forward(out, mean, rstd, inp, w, b, N, C, (float)c->norm_eps);
    else
        rmsnorm_forward(out, rstd, inp, w, N, C, (float)c->norm_eps);
}

static void norm_backward(const Config *c, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, size_t N, size_t C) {
    if (c->norm == NORM_LAYERNORM)
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    else
        rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
}

static inline float emb_scale(const Transformer *m) { return m->cfg.emb_scale ? sqrtf((float)m->C) : 1.0f; }

/* One layer's activations: slices of TransformerActs in training, one token's buffers (reused by
 * every layer) in decoding. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* (N, C), (N), (N) */
    AttnActs attn;
    float *res2;                      /* (N, C) residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;
    MlpActs mlp;                      /* dense layers */
    MoeActs moe;                      /* MoE layers */
    float *res3;                      /* (N, C) residual after the MLP */
} LayerActs;

/* MoE layer mi's slices of the MoE activations (ints live in float slots of the same size). */
static MoeActs moe_acts(const Transformer *m, size_t mi) {
    const TransformerActs *a = &m->a;
    size_t N = (size_t)m->B * m->T, E = m->E, NK = N * (size_t)m->K, C = m->C;
    size_t SF = (size_t)m->S * m->Fe, SF1 = (size_t)m->S * m->Fe1;
    MoeActs s = {
        .rlog = a->moe_rlog + mi * N * E,
        .rsc = a->moe_rsc + mi * N * E,
        .sel = (int *)(a->moe_sel + mi * NK),
        .gate = a->moe_gate + mi * NK,
        .order = (int *)(a->moe_order + mi * NK),
        .pos = (int *)(a->moe_pos + mi * NK),
        .eoff = (int *)(a->moe_eoff + mi * (E + 1)),
        .xin = a->moe_xin + mi * NK * C,
        .ey = a->moe_ey + mi * NK * C,
        .eh = a->moe_eh + mi * NK * (size_t)m->Fe1,
        .eg = a->moe_eg + mi * NK * (size_t)m->Fe,
        .sh = at(a->moe_sh, mi, N * SF1),
        .sg = at(a->moe_sg, mi, N * SF),
    };
    return s;
}

static LayerActs layer_acts(const Transformer *m, size_t l) {
    const TransformerActs *a = &m->a;
    size_t B = m->B, T = m->T, N = B * T, NC = N * m->C, QKV = m->QKV, H = m->H, nqk = H + m->Hkv;
    LayerActs s = {
        .ln1 = a->ln1 + l * NC,
        .ln1_mean = a->ln1_mean + l * N,
        .ln1_rstd = a->ln1_rstd + l * N,
        .attn = {a->qkv + l * N * QKV, at(a->qkvp, l, N * QKV), at(a->qk_rstd, l, N * nqk), a->att + l * B * H * T * T,
                 a->atty + l * NC, at(a->mla_cq_raw, l, N * (size_t)m->Rq), at(a->mla_cq, l, N * (size_t)m->Rq),
                 at(a->mla_cq_rstd, l, N), at(a->mla_ckv_raw, l, N * (size_t)m->R), at(a->mla_ckv, l, N * (size_t)m->R),
                 at(a->mla_kv_rstd, l, N), at(a->mla_kvu, l, N * (size_t)m->H * (2 * m->hd - m->dr)),
                 at(a->mla_kr, l, N * (size_t)m->dr)},
        .res2 = a->res2 + l * NC,
        .ln2 = a->ln2 + l * NC,
        .ln2_mean = a->ln2_mean + l * N,
        .ln2_rstd = a->ln2_rstd + l * N,
        .res3 = a->res3 + l * NC,
    };
    if (transformer_is_moe(m, l)) {
        s.moe = moe_acts(m, transformer_moe_index(m, l));
    } else {
        size_t d = transformer_dense_index(m, l);
        s.mlp = (MlpActs){a->fch + d * N * (size_t)m->F1, a->fcg + d * N * (size_t)m->F};
    }
    return s;
}

/* out (B, T, C) = token embeddings + positions pos0 + t. */
static void embed_forward(const Transformer *m, float *out, const int *tokens, size_t B, size_t T, size_t pos0) {
    const Config *c = &m->cfg;
    size_t C = m->C;
    embedding_forward(out, tokens, m->w.wte, B * T, C, emb_scale(m));
    if (c->pos == POS_LEARNED) posemb_learned_forward(out, m->w.wpe + pos0 * C, B, T, C);
    if (c->pos == POS_SINUSOIDAL) posemb_sinusoidal_forward(out, B, T, C, pos0);
}

/* Block l on B x T rows from x, saving into s; returns its output (res3 pre-norm, ln2 post-norm).
 * With kv: one token at position pos, whose attention reads and extends the cache. */
static const float *block_forward(const Transformer *m, size_t l, const LayerActs *s, const float *x,
                                  const int *tokens, size_t B, size_t T, KVCache *kv, int pos, int training) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t N = B * T, C = m->C, NC = N * C;
    int pre = c->norm_position == NORMPOS_PRE;

    /* attention sub-block */
    const float *attn_in = x;
    if (pre) {
        norm_forward(c, s->ln1, s->ln1_mean, s->ln1_rstd, x, w->ln1_w + l * C, cat(w->ln1_b, l, C), N, C);
        attn_in = s->ln1;
    }
    if (kv && m->mla)
        mla_block_forward_token(m, l, kv, s->res2, &s->attn, attn_in, pos);
    else if (kv)
        attn_block_forward_token(m, l, kv, s->res2, &s->attn, attn_in, tokens[0], pos);
    else if (m->mla)
        mla_block_forward(m, l, s->res2, &s->attn, attn_in, B, T);
    else
        attn_block_forward(m, l, s->res2, &s->attn, attn_in, tokens, B, T);
    residual_forward(s->res2, s->res2, x, NC);

    /* MLP sub-block */
    const float *mlp_in;
    if (c->parallel_block) { /* res3 = x + attn(ln1) + mlp(ln1) */
        mlp_in = s->ln1;
    } else if (pre) {
        norm_forward(c, s->ln2, s->ln2_mean, s->ln2_rstd, s->res2, w->ln2_w + l * C, cat(w->ln2_b, l, C), N, C);
        mlp_in = s->ln2;
    } else {
        norm_forward(c, s->ln1, s->ln1_mean, s->ln1_rstd, s->res2, w->ln1_w + l * C, cat(w->ln1_b, l, C), N, C);
        mlp_in = s->ln1;
    }
    if (transformer_is_moe(m, l)) /* writes the model (loads, balance loss) only when training */
        moe_block_forward((Transformer *)m, l, s->res3, &s->moe, mlp_in, N, training);
    else
        mlp_block_forward(m, l, s->res3, &s->mlp, mlp_in, N);
    residual_forward(s->res3, s->res3, pre ? s->res2 : s->ln1, NC);
    if (pre) return s->res3;
    norm_forward(c, s->ln2, s->ln2_mean, s->ln2_rstd, s->res3, w->ln2_w + l * C, cat(w->ln2_b, l, C), N, C);
    return s->ln2;
}

/* logits (N, V) from the last block's output x: final norm (pre-norm), LM head, soft-cap (from
 * logits_raw). */
/* Logits of N rows of h through the head, times muP's readout multiplier (1 without muP). */
static void head_logits(const Transformer *m, float *logits, const float *h, const float *head, size_t N) {
    size_t V = m->V;
    linear_forward(logits, h, head, NULL, N, m->C, V);
    float r = (float)transformer_mup_ratio(&m->cfg);
    if (r != 1.0f)
        for (size_t i = 0; i < N * V; i++) logits[i] *= r;
}

/* The head's backward from dlogits, which it scales in place by the readout multiplier first. */
static void head_backward(const Transformer *m, float *dh, GradWrite dh_mode, float *dhead, float *dlogits, const float *h,
                          const float *head, size_t N) {
    size_t V = m->V;
    float r = (float)transformer_mup_ratio(&m->cfg);
    if (r != 1.0f)
        for (size_t i = 0; i < N * V; i++) dlogits[i] *= r;
    linear_backward(dh, dh_mode, dhead, NULL, dlogits, h, head, N, m->C, V);
}

static void head_forward(const Transformer *m, float *logits, float *logits_raw, float *lnf, float *lnf_mean,
                         float *lnf_rstd, const float *x, size_t N) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t C = m->C, V = m->V;
    const float *h = x;
    if (c->norm_position == NORMPOS_PRE) {
        norm_forward(c, lnf, lnf_mean, lnf_rstd, x, w->lnf_w, w->lnf_b, N, C);
        h = lnf;
    }
    const float *head = c->tie_embeddings ? w->wte : w->head;
    if (c->softcap > 0) {
        head_logits(m, logits_raw, h, head, N);
        softcap_forward(logits, logits_raw, N * V, (float)c->softcap);
    } else {
        head_logits(m, logits, h, head, N);
    }
}

/* U-net skips (modded-nanogpt): the first Le = L/2 layers are the encoder; decoder layer Le + i
 * (i < Le) reads x + skip_w[i] * (the output of encoder layer Le - 1 - i), innermost pairs first. */
static int skip_index(const Transformer *m, size_t l) {
    int i = (int)l - m->Le;
    return m->Us > 0 && i >= 0 && i < m->Us ? i : -1;
}

static size_t skip_source(const Transformer *m, int i) { return (size_t)(m->Le - 1 - i); }

static void skip_forward(float *out, const float *x, const float *h, float w, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = x[k] + w * h[k];
}

/* d x passes through; d h (into dh, accumulated) = w d out; d w = sum d out * h. */
static float skip_backward(float *dh, const float *dout, const float *h, float w, size_t n) {
    double dw = 0.0;
    for (size_t k = 0; k < n; k++) {
        dh[k] += w * dout[k];
        dw += (double)dout[k] * h[k];
    }
    return (float)dw;
}

float transformer_forward(Transformer *m, const int *inputs, const int *targets, int B, int T) {
    TransformerActs *a = &m->a;
    /* Activations are laid out for the prepared shape; a different shape is a caller bug. */
    if (B != m->B || T != m->T || !m->acts_mem) abort();
    size_t N = (size_t)B * T, V = m->V;
    memcpy(m->inputs, inputs, N * sizeof(int));

    embed_forward(m, a->encoded, inputs, (size_t)B, (size_t)T, 0);
    const float *x = a->encoded;
    m->aux_loss = 0.0f;
    for (size_t l = 0; l < (size_t)m->L; l++) {
        LayerActs s = layer_acts(m, l);
        int i = skip_index(m, l);
        if (i >= 0) { /* a decoder layer's input: the stream plus its encoder layer's output */
            float *xin = a->skip_in + (size_t)i * N * m->C;
            skip_forward(xin, x, a->res3 + skip_source(m, i) * N * m->C, m->w.skip_w[i], N * m->C);
            x = xin;
        }
        x = block_forward(m, l, &s, x, inputs, (size_t)B, (size_t)T, NULL, 0, targets != NULL);
    }
    head_forward(m, a->probs, a->logits_raw, a->lnf, a->lnf_mean, a->lnf_rstd, x, N);
    m->have_targets = targets != NULL;
    if (!targets) return 0.0f;
    memcpy(m->targets, targets, N * sizeof(int));
    if (m->cfg.z_loss > 0) zloss_forward(a->logz, a->probs, N, V); /* before the softmax overwrites the logits */
    crossentropy_softmax_forward(a->losses, a->probs, a->probs, targets, N, V);
    double sum = 0.0, zsum = 0.0;
    size_t count = 0;
    for (size_t n = 0; n < N; n++)
        if (targets[n] >= 0) {
            sum += a->losses[n];
            if (m->cfg.z_loss > 0) zsum += (double)a->logz[n] * a->logz[n];
            count++;
        }
    m->mean_loss = count ? (float)(sum / (double)count) : 0.0f;
    m->zloss = count ? (float)(m->cfg.z_loss * zsum / (double)count) : 0.0f;
    return m->mean_loss;
}

/* ---------------------------------------------------------------- backward */

/* Block l's backward on B x T rows: bufs[0] holds d(block output) and, on return, d x_in; bufs[1],
 * bufs[2] are scratch (the three rotate). */
static void block_backward(Transformer *m, size_t l, const LayerActs *s, const float *x_in, float *bufs[3], size_t B,
                           size_t T) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    size_t N = B * T, C = m->C, NC = N * C;
    int pre = c->norm_position == NORMPOS_PRE;
    float *dres = bufs[0], *dx1 = bufs[1], *dx2 = bufs[2], *tmp;
    if (!pre) { /* x_out = norm2(res3) */
        zero(dx1, NC);
        norm_backward(c, dx1, g->ln2_w + l * C, at(g->ln2_b, l, C), dres, s->res3, w->ln2_w + l * C, s->ln2_mean,
                      s->ln2_rstd, N, C);
        tmp = dres, dres = dx1, dx1 = tmp;
    }
    /* dres = d res3; res3 = mlp_in + mlp(mlp_in)  (pre: + res2) */
    int parallel = c->parallel_block;
    const float *mlp_in = pre && !parallel ? s->ln2 : s->ln1;
    if (transformer_is_moe(m, l))
        moe_block_backward(m, l, dx1, dres, mlp_in, &s->moe, N);
    else
        mlp_block_backward(m, l, dx1, GRAD_SET, dres, mlp_in, &s->mlp, N);
    GradWrite attn_mode = GRAD_SET;
    if (parallel) { /* res3 = res2 + mlp(ln1): dx1 holds the MLP's share of d ln1, attention adds its own */
        attn_mode = GRAD_ADD;
    } else if (pre) { /* ln2 = norm2(res2); the residual path already carries dres */
        norm_backward(c, dres, g->ln2_w + l * C, at(g->ln2_b, l, C), dx1, s->res2, w->ln2_w + l * C, s->ln2_mean,
                      s->ln2_rstd, N, C);
    } else { /* ln1 = norm1(res2) fed both the MLP and the residual */
#pragma omp parallel for schedule(static) if (NC >= AP_PAR_MIN)
        for (size_t i = 0; i < NC; i++) dx1[i] += dres[i];
        zero(dx2, NC);
        norm_backward(c, dx2, g->ln1_w + l * C, at(g->ln1_b, l, C), dx1, s->res2, w->ln1_w + l * C, s->ln1_mean,
                      s->ln1_rstd, N, C);
        tmp = dres, dres = dx2, dx2 = tmp;
    }
    /* dres = d res2; res2 = x_in + attn(attn_in), attn_in = norm1(x_in) (pre) or x_in */
    if (pre && m->mla) {
        mla_block_backward(m, l, dx1, attn_mode, dres, s->ln1, &s->attn, B, T);
        norm_backward(c, dres, g->ln1_w + l * C, at(g->ln1_b, l, C), dx1, x_in, w->ln1_w + l * C, s->ln1_mean,
                      s->ln1_rstd, N, C);
    } else if (m->mla) {
        mla_block_backward(m, l, dres, GRAD_ADD, dres, x_in, &s->attn, B, T);
    } else if (pre) {
        attn_block_backward(m, l, dx1, attn_mode, dres, s->ln1, &s->attn, m->inputs, B, T);
        norm_backward(c, dres, g->ln1_w + l * C, at(g->ln1_b, l, C), dx1, x_in, w->ln1_w + l * C, s->ln1_mean,
                      s->ln1_rstd, N, C);
    } else {
        attn_block_backward(m, l, dres, GRAD_ADD, dres, x_in, &s->attn, m->inputs, B, T);
    }
    bufs[0] = dres, bufs[1] = dx1, bufs[2] = dx2; /* dres = d x_in */
}

/* ---------------------------------------------------------------- multi-token prediction */

/* Depth k's (1..D) slices: rows b*(T-k) + i for the first T - k positions of each sequence. */
typedef struct {
    float *hp, *hn, *hn_mean, *hn_rstd, *e, *en, *en_mean, *en_rstd, *cat, *x, *fo, *fo_mean, *fo_rstd, *dhead;
    int *tokens, *targets;
} MtpActs;

static MtpActs mtp_acts(const Transformer *m, size_t k) {
    const TransformerActs *a = &m->a;
    size_t N = (size_t)m->B * m->T, C = m->C, d = k - 1;
    MtpActs s = {a->mtp_hp + d * N * C,   a->mtp_hn + d * N * C,  a->mtp_hn_mean + d * N, a->mtp_hn_rstd + d * N,
                 a->mtp_e + d * N * C,    a->mtp_en + d * N * C,  a->mtp_en_mean + d * N, a->mtp_en_rstd + d * N,
                 a->mtp_cat + d * N * 2 * C, a->mtp_x + d * N * C, a->mtp_fo + d * N * C, a->mtp_fo_mean + d * N,
                 a->mtp_fo_rstd + d * N,  a->mtp_dhead + d * N * C, (int *)(a->mtp_tokens + d * N),
                 (int *)(a->mtp_targets + d * N)};
    return s;
}

/* The main model's last hidden state (what its head reads before the final norm). */
static const float *last_hidden(const Transformer *m) {
    size_t NC = (size_t)m->B * m->T * m->C, L = (size_t)m->L;
    return m->cfg.norm_position == NORMPOS_PRE ? m->a.res3 + (L - 1) * NC : m->a.ln2 + (L - 1) * NC;
}

/* Forward of every depth on the last batch; with `backward`, each depth's head backward too
 * (its logits share a->probs, so they cannot wait), leaving d(block output) in dhead. */
static float mtp_forward(Transformer *m, int backward) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    size_t B = m->B, T = m->T, C = m->C, V = m->V, D = m->D;
    const float *head = c->tie_embeddings ? w->wte : w->head;
    float *dhead = c->tie_embeddings ? g->wte : g->head;
    const float *h_prev = last_hidden(m);
    size_t Tp = T;
    double total = 0.0;
    for (size_t k = 1; k <= D; k++) {
        size_t Tk = T - k, Nk = B * Tk;
        MtpActs s = mtp_acts(m, k);
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < Tk; i++) {
                memcpy(s.hp + (b * Tk + i) * C, h_prev + (b * Tp + i) * C, C * sizeof(float));
                s.tokens[b * Tk + i] = m->inputs[b * T + i + k];  /* token i+k */
                s.targets[b * Tk + i] = m->targets[b * T + i + k]; /* token i+k+1 */
            }
        norm_forward(c, s.hn, s.hn_mean, s.hn_rstd, s.hp, w->mtp_hnorm + (k - 1) * C, NULL, Nk, C);
        embedding_forward(s.e, s.tokens, w->wte, Nk, C, emb_scale(m));
        norm_forward(c, s.en, s.en_mean, s.en_rstd, s.e, w->mtp_enorm + (k - 1) * C, NULL, Nk, C);
        for (size_t n = 0; n < Nk; n++) {
            memcpy(s.cat + n * 2 * C, s.hn + n * C, C * sizeof(float));
            memcpy(s.cat + n * 2 * C + C, s.en + n * C, C * sizeof(float));
        }
        linear_forward(s.x, s.cat, w->mtp_proj + (k - 1) * C * 2 * C, NULL, Nk, 2 * C, C);
        size_t l = (size_t)m->L + k - 1;
        LayerActs ls = layer_acts(m, l);
        const float *h = block_forward(m, l, &ls, s.x, s.tokens, B, Tk, NULL, 0, 1);
        norm_forward(c, s.fo, s.fo_mean, s.fo_rstd, h, w->mtp_lnf + (k - 1) * C, NULL, Nk, C);
        if (c->softcap > 0) {
            head_logits(m, a->logits_raw, s.fo, head, Nk);
            softcap_forward(a->probs, a->logits_raw, Nk * V, (float)c->softcap);
        } else {
            head_logits(m, a->probs, s.fo, head, Nk);
        }
        crossentropy_softmax_forward(a->mtp_losses, a->probs, a->probs, s.targets, Nk, V);
        double sum = 0.0;
        size_t count = 0;
        for (size_t n = 0; n < Nk; n++)
            if (s.targets[n] >= 0) sum += a->mtp_losses[n], count++;
        float weight = (float)(c->mtp_weight / (double)D);
        total += count ? weight * sum / (double)count : 0.0;
        if (backward) {
            crossentropy_softmax_backward(a->probs, a->probs, s.targets, count ? weight / (float)count : 0.0f, Nk, V);
            float *dlogits = a->probs;
            if (c->softcap > 0) {
                softcap_backward(a->dlogits_raw, GRAD_SET, a->probs, a->logits_raw, Nk * V, (float)c->softcap);
                dlogits = a->dlogits_raw;
            }
            float *dfo = a->mtp_scratch;
            head_backward(m, dfo, GRAD_SET, dhead, dlogits, s.fo, head, Nk);
            zero(s.dhead, Nk * C);
            norm_backward(c, s.dhead, g->mtp_lnf + (k - 1) * C, NULL, dfo, h, w->mtp_lnf + (k - 1) * C, s.fo_mean,
                          s.fo_rstd, Nk, C);
        }
        h_prev = h, Tp = Tk;
    }
    return (float)total;
}

float transformer_mtp_loss(Transformer *m) { return m->D > 0 ? mtp_forward(m, 0) : 0.0f; }

/* The modules' backward, deepest first; adds their gradient of the main model's last hidden state
 * into dh0 (B*T rows). */
static void mtp_backward(Transformer *m, float *dh0) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    size_t B = m->B, T = m->T, C = m->C, N = B * T, NC = N * C, D = m->D;
    float *sc = m->a.mtp_scratch;
    float *bufs[3] = {sc, sc + NC, sc + 2 * NC}, *dcat = sc + 3 * NC, *dpart = sc + 5 * NC, *pending = sc + 6 * NC;
    m->mtp_loss = mtp_forward(m, 1);
    for (size_t k = D; k >= 1; k--) {
        size_t Tk = T - k, Nk = B * Tk, l = (size_t)m->L + k - 1;
        MtpActs s = mtp_acts(m, k);
        /* d(block output) = from this depth's head, plus from depth k+1's input (its first T-k-1 positions) */
        memcpy(bufs[0], s.dhead, Nk * C * sizeof(float));
        if (k < D) {
            size_t Tn = Tk - 1;
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < Tn; i++) {
                    float *d = bufs[0] + (b * Tk + i) * C;
                    const float *p = pending + (b * Tn + i) * C;
                    for (size_t j = 0; j < C; j++) d[j] += p[j];
                }
        }
        LayerActs ls = layer_acts(m, l);
        block_backward(m, l, &ls, s.x, bufs, B, Tk);
        /* x = proj [hn | en] */
        linear_backward(dcat, GRAD_SET, g->mtp_proj + (k - 1) * C * 2 * C, NULL, bufs[0], s.cat,
                        w->mtp_proj + (k - 1) * C * 2 * C, Nk, 2 * C, C);
        for (size_t n = 0; n < Nk; n++) memcpy(dpart + n * C, dcat + n * 2 * C + C, C * sizeof(float));
        zero(bufs[1], Nk * C);
        norm_backward(c, bufs[1], g->mtp_enorm + (k - 1) * C, NULL, dpart, s.e, w->mtp_enorm + (k - 1) * C, s.en_mean,
                      s.en_rstd, Nk, C);
        embedding_backward(g->wte, bufs[1], s.tokens, Nk, C, emb_scale(m));
        for (size_t n = 0; n < Nk; n++) memcpy(dpart + n * C, dcat + n * 2 * C, C * sizeof(float));
        zero(pending, Nk * C);
        norm_backward(c, pending, g->mtp_hnorm + (k - 1) * C, NULL, dpart, s.hp, w->mtp_hnorm + (k - 1) * C, s.hn_mean,
                      s.hn_rstd, Nk, C);
        if (k == 1) /* the main model's last hidden state, its first T-1 positions */
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < Tk; i++) {
                    float *d = dh0 + (b * T + i) * C;
                    const float *p = pending + (b * Tk + i) * C;
                    for (size_t j = 0; j < C; j++) d[j] += p[j];
                }
    }
}

/* ---------------------------------------------------------------- backward */

void transformer_backward(Transformer *m) {
    if (!m->have_targets) abort(); /* backward needs a forward with targets */
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    int B = m->B, T = m->T;
    size_t N = (size_t)B * T, C = m->C, V = m->V, NC = N * C, L = (size_t)m->L;
    int pre = c->norm_position == NORMPOS_PRE;

    size_t count = 0;
    for (size_t n = 0; n < N; n++) count += m->targets[n] >= 0;
    float dloss = count ? 1.0f / (float)count : 0.0f;

    /* loss: probs become dlogits in place, the z-loss's gradient folded in first; distillation's is
     * taken while probs are still the softmax, and added after (the config refuses it with z_loss) */
    float ce_weight = 1.0f;
    if (m->distill_q) {
        distill_backward(m->distill_q, a->probs, m->targets, m->distill_weight, dloss, N, V, m->distill_T);
        ce_weight = 1.0f - m->distill_weight;
    }
    if (c->z_loss > 0) zloss_backward(a->probs, a->logz, m->targets, (float)c->z_loss, N, V);
    crossentropy_softmax_backward(a->probs, a->probs, m->targets, dloss * ce_weight, N, V);
    if (m->distill_q) {
        float *q = m->distill_q;
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
        for (size_t i = 0; i < N * V; i++) a->probs[i] += q[i];
        m->distill_q = NULL;
    }
    float *dlogits = a->probs;
    if (c->softcap > 0) {
        softcap_backward(a->dlogits_raw, GRAD_SET, a->probs, a->logits_raw, N * V, (float)c->softcap);
        dlogits = a->dlogits_raw;
    }
    /* head */
    const float *head = c->tie_embeddings ? w->wte : w->head;
    float *dhead = c->tie_embeddings ? g->wte : g->head;
    float *bufs[3] = {a->dres, a->dx1, a->dx2};
    zero(bufs[0], NC);
    if (pre) {
        const float *xL = a->res3 + (L - 1) * NC;
        head_backward(m, bufs[1], GRAD_SET, dhead, dlogits, a->lnf, head, N);
        norm_backward(c, bufs[0], g->lnf_w, g->lnf_b, bufs[1], xL, w->lnf_w, a->lnf_mean, a->lnf_rstd, N, C);
    } else {
        head_backward(m, bufs[0], GRAD_ADD, dhead, dlogits, a->ln2 + (L - 1) * NC, head, N);
    }
    /* the head's logits are consumed: the multi-token modules may use their buffer now */
    if (m->D > 0) mtp_backward(m, bufs[0]);

    if (m->Us > 0) zero(a->dskip, (size_t)m->Us * NC);
    for (size_t l = L; l-- > 0;) {
        LayerActs s = layer_acts(m, l);
        if (m->Us > 0 && l < (size_t)m->Le) /* an encoder output a skip read (dskip is indexed by source) */
            residual_forward(bufs[0], bufs[0], a->dskip + l * NC, NC);
        int i = skip_index(m, l);
        const float *x_in = l == 0 ? a->encoded : (pre ? a->res3 + (l - 1) * NC : a->ln2 + (l - 1) * NC);
        if (i >= 0) x_in = a->skip_in + (size_t)i * NC;
        block_backward(m, l, &s, x_in, bufs, (size_t)B, (size_t)T);
        if (i >= 0) {
            size_t src = skip_source(m, i);
            g->skip_w[i] += skip_backward(a->dskip + src * NC, bufs[0], a->res3 + src * NC, w->skip_w[i], NC);
        }
    }
    if (c->pos == POS_LEARNED) posemb_learned_backward(g->wpe, bufs[0], B, T, C);
    embedding_backward(g->wte, bufs[0], m->inputs, N, C, emb_scale(m));
}

void transformer_end_step(Transformer *m) {
    if (m->E == 0 || m->cfg.moe_balance != MOE_BALANCE_BIAS) return;
    for (size_t mi = 0; mi < (size_t)m->Lm; mi++)
        moe_bias_update(m->w.moe_bias + mi * m->E, m->moe_load + mi * m->E, (size_t)m->E, (float)m->cfg.moe_bias_rate);
}

void transformer_free(Transformer *m) {
    paramset_free(&m->ps);
    free(m->moe_load);
    free(m->alibi);
    m->moe_load = m->alibi = NULL;
    free(m->acts_mem);
    free(m->inputs);
    free(m->targets);
    free(m->rope_cos);
    free(m->rope_sin);
    m->acts_mem = m->rope_cos = m->rope_sin = NULL;
    m->inputs = m->targets = NULL;
}

/* ---------------------------------------------------------------- cached decoding */

static size_t kvcache_layout(KVCache *kv, const Transformer *m, float *mem) {
    size_t L = m->L, T = m->Tmax, kvd = (size_t)m->Hkv * m->hd, C = m->C, QKV = m->QKV, H = m->H;
    size_t R = m->R, Rq = m->Rq, dr = m->dr;
    size_t nqk = H + (size_t)m->Hkv, V = m->V, E = m->E, K = m->K;
    LayoutSlot table[] = {
        {&kv->k, L * T * (m->mla ? R : kvd)},
        {&kv->v, L * T * (m->mla ? dr : kvd)},
        {&kv->mla_scratch, 2 * H * R},
        {&kv->mla_cq_raw, Rq},
        {&kv->mla_cq, Rq},
        {&kv->mla_cq_rstd, Rq ? 1 : 0},
        {&kv->mla_ckv_raw, R},
        {&kv->mla_ckv, R},
        {&kv->mla_kv_rstd, R ? 1 : 0},
        {&kv->mla_kr, dr},
        {&kv->x, C},
        {&kv->skip_h, (size_t)m->Us * C},
        {&kv->ln1, C},
        {&kv->ln1_mean, 1},
        {&kv->ln1_rstd, 1},
        {&kv->qkv, QKV},
        {&kv->qkvp, QKV},
        {&kv->qk_rstd, nqk},
        {&kv->att, H * T},
        {&kv->atty, C},
        {&kv->res2, C},
        {&kv->ln2, C},
        {&kv->ln2_mean, 1},
        {&kv->ln2_rstd, 1},
        {&kv->fch, (size_t)m->F1},
        {&kv->fcg, (size_t)m->F},
        {&kv->moe_rlog, E},
        {&kv->moe_rsc, E},
        {&kv->moe_sel, K},
        {&kv->moe_gate, K},
        {&kv->moe_order, K},
        {&kv->moe_pos, K},
        {&kv->moe_eoff, E ? E + 1 : 0},
        {&kv->moe_xin, K * C},
        {&kv->moe_ey, K * C},
        {&kv->moe_eh, K * (size_t)m->Fe1},
        {&kv->moe_eg, K * (size_t)m->Fe},
        {&kv->moe_sh, (size_t)m->S * m->Fe1},
        {&kv->moe_sg, (size_t)m->S * m->Fe},
        {&kv->res3, C},
        {&kv->lnf, C},
        {&kv->lnf_mean, 1},
        {&kv->lnf_rstd, 1},
        {&kv->logits_raw, m->cfg.softcap > 0 ? V : 0},
        {&kv->logits, V},
    };
    return layout_carve(table, sizeof table / sizeof table[0], mem);
}

int kvcache_create(KVCache *kv, const Transformer *m, Status *st) {
    memset(kv, 0, sizeof *kv);
    size_t total = kvcache_layout(kv, m, NULL);
    kv->mem = floats_alloc(total);
    if (!kv->mem) return status_fail(st, AP_ENOMEM, "cannot allocate the KV cache (%.1f MB)", total * 4.0 / 1e6);
    kvcache_layout(kv, m, kv->mem);
    kv->Tmax = m->Tmax;
    return 0;
}

void kvcache_free(KVCache *kv) {
    free(kv->mem);
    kv->mem = NULL;
}

void transformer_forward_token(const Transformer *m, KVCache *kv, int token, int pos) {
    LayerActs s = {kv->ln1,
                   kv->ln1_mean,
                   kv->ln1_rstd,
                   {kv->qkv, kv->qkvp, kv->qk_rstd, kv->att, kv->atty, kv->mla_cq_raw, kv->mla_cq, kv->mla_cq_rstd,
                    kv->mla_ckv_raw, kv->mla_ckv, kv->mla_kv_rstd, NULL, kv->mla_kr},
                   kv->res2,
                   kv->ln2,
                   kv->ln2_mean,
                   kv->ln2_rstd,
                   {kv->fch, kv->fcg},
                   {kv->moe_rlog, kv->moe_rsc, (int *)kv->moe_sel, kv->moe_gate, (int *)kv->moe_order,
                    (int *)kv->moe_pos, (int *)kv->moe_eoff, kv->moe_xin, kv->moe_ey, kv->moe_eh, kv->moe_eg,
                    kv->moe_sh, kv->moe_sg},
                   kv->res3};
    embed_forward(m, kv->x, &token, 1, 1, (size_t)pos);
    size_t C = (size_t)m->C;
    for (size_t l = 0; l < (size_t)m->L; l++) {
        int i = skip_index(m, l);
        if (i >= 0) skip_forward(kv->x, kv->x, kv->skip_h + skip_source(m, i) * C, m->w.skip_w[i], C);
        const float *y = block_forward(m, l, &s, kv->x, &token, 1, 1, kv, pos, 0);
        memcpy(kv->x, y, C * sizeof(float)); /* the next block reuses the same buffers */
        if (m->Us > 0 && l < (size_t)m->Le) memcpy(kv->skip_h + l * C, kv->x, C * sizeof(float));
    }
    head_forward(m, kv->logits, kv->logits_raw, kv->lnf, kv->lnf_mean, kv->lnf_rstd, kv->x, 1);
}
