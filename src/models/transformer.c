/* transformer.c - forward, backward and cached decoding of the switchable Transformer.
 * The backward is the forward read bottom-up; each step names the forward line it undoes. */
#include "models/transformer.h"

#include "kernels/fastmath.h"
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- parameters */

static void declare_params(Transformer *m) {
    const Config *c = &m->cfg;
    ParamSet *ps = &m->ps;
    TransformerWeights *w = &m->w, *g = &m->g;
    size_t C = (size_t)m->C, L = (size_t)m->L, V = (size_t)m->V, T = (size_t)m->Tmax;
    size_t QKV = (size_t)m->QKV, F = (size_t)m->F, F1 = (size_t)m->F1, hd = (size_t)m->hd;
    int xavier = c->init == INIT_XAVIER;
    float std = (float)c->init_std;
    float proj_std = c->init == INIT_GPT2 ? std / sqrtf(2.0f * (float)L) : std;
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
    paramset_add(ps, "wqkv", &w->wqkv, &g->wqkv, PGROUP_MATRIX, mat, xavier ? XB(C, C) : std, L, QKV, C);
    size_t qkv_rows[3] = {(size_t)m->H * hd, kvd, kvd};
    paramset_set_blocks(ps, 3, qkv_rows);
    if (c->bias) paramset_add(ps, "bqkv", &w->bqkv, &g->bqkv, PGROUP_VECTOR, PINIT_ZEROS, 0, L, QKV, 0);
    if (c->qk_norm) {
        paramset_add(ps, "q_norm", &w->q_norm, &g->q_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, hd, 0);
        paramset_add(ps, "k_norm", &w->k_norm, &g->k_norm, PGROUP_VECTOR, PINIT_ONES, 0, L, hd, 0);
    }
    paramset_add(ps, "wo", &w->wo, &g->wo, PGROUP_MATRIX, proj_init, xavier ? XB(C, C) : proj_std, L, C, C);
    if (c->bias) paramset_add(ps, "bo", &w->bo, &g->bo, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    paramset_add(ps, "ln2_w", &w->ln2_w, &g->ln2_w, PGROUP_VECTOR, PINIT_ONES, 0, L, C, 0);
    if (ln_bias) paramset_add(ps, "ln2_b", &w->ln2_b, &g->ln2_b, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    paramset_add(ps, "wfc", &w->wfc, &g->wfc, PGROUP_MATRIX, mat, xavier ? XB(C, F) : std, L, F1, C);
    if (F1 == 2 * F) {
        size_t glu_rows[2] = {F, F};
        paramset_set_blocks(ps, 2, glu_rows);
    }
    if (c->bias) paramset_add(ps, "bfc", &w->bfc, &g->bfc, PGROUP_VECTOR, PINIT_ZEROS, 0, L, F1, 0);
    paramset_add(ps, "wproj", &w->wproj, &g->wproj, PGROUP_MATRIX, proj_init, xavier ? XB(F, C) : proj_std, L, C, F);
    if (c->bias) paramset_add(ps, "bproj", &w->bproj, &g->bproj, PGROUP_VECTOR, PINIT_ZEROS, 0, L, C, 0);
    if (c->norm_position == NORMPOS_PRE) {
        paramset_add(ps, "lnf_w", &w->lnf_w, &g->lnf_w, PGROUP_VECTOR, PINIT_ONES, 0, C, 0, 0);
        if (ln_bias) paramset_add(ps, "lnf_b", &w->lnf_b, &g->lnf_b, PGROUP_VECTOR, PINIT_ZEROS, 0, C, 0, 0);
    }
    if (!c->tie_embeddings)
        paramset_add(ps, "head", &w->head, &g->head, PGROUP_HEAD, proj_init, xavier ? XB(C, V) : std, V, C, 0);
    if (m->Lve > 0) {
        paramset_add(ps, "ve", &w->ve, &g->ve, PGROUP_EMBED, PINIT_NORMAL, emb_std, (size_t)m->Lve, V, kvd);
        paramset_add(ps, "ve_lambda", &w->ve_lambda, &g->ve_lambda, PGROUP_VECTOR, PINIT_CONST, 0.5f, (size_t)m->Lve,
                     2, 0);
    }
#undef XB
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
    if (cfg->pos == POS_ROPE) {
        size_t n = (size_t)m->Tmax * (size_t)(m->hd / 2);
        m->rope_cos = floats_alloc(n);
        m->rope_sin = floats_alloc(n);
        if (!m->rope_cos || !m->rope_sin) {
            transformer_free(m);
            return status_fail(st, AP_ENOMEM, "cannot allocate RoPE tables");
        }
        rope_tables(m->rope_cos, m->rope_sin, (size_t)m->Tmax, (size_t)m->hd, (float)cfg->rope_base);
    }
    return 0;
}

size_t transformer_total_params(const Transformer *m) {
    size_t n = 0;
    for (int i = 0; i < m->ps.n; i++) n += m->ps.t[i].numel;
    return n;
}

size_t transformer_nonembedding_params(const Transformer *m) {
    size_t n = 0;
    for (int i = 0; i < m->ps.n; i++)
        if (m->ps.t[i].group != PGROUP_EMBED) n += m->ps.t[i].numel;
    return n;
}

StepFlops transformer_step_flops(const Config *c, int B, int T) {
    double C = c->d_model, L = c->n_layers, H = c->n_heads, Hkv = c->n_kv_heads ? c->n_kv_heads : c->n_heads;
    double hd = C / H, F = c->d_ff, F1 = config_is_gated(c) ? 2 * F : F, V = c->vocab, N = (double)B * T;
    double QKV = (H + 2 * Hkv) * hd;
    double linear_macs = N * (C * QKV + C * C + C * F1 + F * C);
    /* query t sees t+1 keys: sum over t of (t+1) = T(T+1)/2, for scores and for the value mix */
    double attn_macs = (double)B * H * hd * ((double)T * (T + 1) / 2.0) * 2.0;
    double head_macs = N * C * V;
    StepFlops f = {0};
    f.forward = 2.0 * (L * (linear_macs + attn_macs) + head_macs);
    f.backward = 2.0 * f.forward; /* each product has two gradient products of equal size */
    return f;
}

/* ---------------------------------------------------------------- activations */

/* The activation table, in one place for the allocation and the memory estimate: returns the
 * floats needed for batch B x T and, with mem non-NULL, points every slot into mem. */
static size_t acts_layout(Transformer *m, size_t B, size_t T, float *mem) {
    const Config *c = &m->cfg;
    size_t N = B * T, C = m->C, L = m->L, QKV = m->QKV, V = m->V, F = m->F, F1 = m->F1;
    size_t H = m->H, nqk = (size_t)(m->H + m->Hkv);
    int pre = c->norm_position == NORMPOS_PRE, qkvp = c->qk_norm || c->pos == POS_ROPE || c->value_embeds > 0;
    TransformerActs *a = &m->a;
    struct {
        float **slot;
        size_t n;
    } table[] = {
        {&a->encoded, N * C},
        {&a->ln1, L * N * C},
        {&a->ln1_mean, L * N},
        {&a->ln1_rstd, L * N},
        {&a->qkv, L * N * QKV},
        {&a->qkvp, qkvp ? L * N * QKV : 0},
        {&a->qk_rstd, c->qk_norm ? L * N * nqk : 0},
        {&a->att, L * B * H * (size_t)T * T},
        {&a->atty, L * N * C},
        {&a->res2, L * N * C},
        {&a->ln2, L * N * C},
        {&a->ln2_mean, L * N},
        {&a->ln2_rstd, L * N},
        {&a->fch, L * N * F1},
        {&a->fcg, L * N * F},
        {&a->res3, L * N * C},
        {&a->lnf, pre ? N * C : 0},
        {&a->lnf_mean, pre ? N : 0},
        {&a->lnf_rstd, pre ? N : 0},
        {&a->logits_raw, c->softcap > 0 ? N * V : 0},
        {&a->probs, N * V},
        {&a->losses, N},
        {&a->dres, N * C},
        {&a->dx1, N * C},
        {&a->dx2, N * C},
        {&a->dqkv, N * QKV},
        {&a->dqkvp, N * QKV},
        {&a->datty, N * C},
        {&a->dfch, N * F1},
        {&a->dfcg, N * F},
        {&a->dlogits_raw, c->softcap > 0 ? N * V : 0},
        {&a->attn_scratch, (size_t)omp_get_max_threads() * attention_scratch_floats((size_t)T, (size_t)m->hd)},
    };
    size_t n_entries = sizeof table / sizeof table[0], off = 0;
    for (size_t i = 0; i < n_entries; i++) {
        if (mem) *table[i].slot = table[i].n ? mem + off : NULL;
        off += (table[i].n + 15) / 16 * 16;
    }
    return off;
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
    m->acts_numel = total;
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

static void act_forward(const Config *c, float *out, const float *inp, size_t N, size_t F) {
    switch (c->act) {
    case ACT_GELU: gelu_forward(out, inp, N * F); break;
    case ACT_RELU: relu_forward(out, inp, N * F); break;
    case ACT_RELU2: relu2_forward(out, inp, N * F); break;
    case ACT_SWIGLU: swiglu_forward(out, inp, N, F); break;
    case ACT_GEGLU: geglu_forward(out, inp, N, F); break;
    }
}

static void act_backward(const Config *c, float *dinp, const float *dout, const float *inp, size_t N, size_t F) {
    switch (c->act) {
    case ACT_GELU: gelu_backward(dinp, dout, inp, N * F); break;
    case ACT_RELU: relu_backward(dinp, dout, inp, N * F); break;
    case ACT_RELU2: relu2_backward(dinp, dout, inp, N * F); break;
    case ACT_SWIGLU: swiglu_backward(dinp, dout, inp, N, F); break;
    case ACT_GEGLU: geglu_backward(dinp, dout, inp, N, F); break;
    }
}

/* Pointer to layer l's slice of a stacked tensor, or NULL when the tensor does not exist. */
static inline float *at(float *base, size_t l, size_t per_layer) { return base ? base + l * per_layer : NULL; }
static inline const float *cat(const float *base, size_t l, size_t per_layer) {
    return base ? base + l * per_layer : NULL;
}

static inline float emb_scale(const Transformer *m) { return m->cfg.emb_scale ? sqrtf((float)m->C) : 1.0f; }

float transformer_forward(Transformer *m, const int *inputs, const int *targets, int B, int T) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerActs *a = &m->a;
    /* Activations are laid out for the prepared shape; a different shape is a caller bug. */
    if (B != m->B || T != m->T || !m->acts_mem) abort();
    size_t N = (size_t)B * T, C = m->C, QKV = m->QKV, F = m->F, F1 = m->F1, V = m->V, hd = m->hd;
    size_t H = m->H, Hkv = m->Hkv, nqk = H + Hkv, NC = N * C;
    int pre = c->norm_position == NORMPOS_PRE;
    memcpy(m->inputs, inputs, N * sizeof(int));

    embedding_forward(a->encoded, inputs, w->wte, N, C, emb_scale(m));
    if (c->pos == POS_LEARNED) posemb_learned_forward(a->encoded, w->wpe, B, T, C);
    if (c->pos == POS_SINUSOIDAL) posemb_sinusoidal_forward(a->encoded, B, T, C, 0);

    const float *x = a->encoded;
    for (size_t l = 0; l < (size_t)m->L; l++) {
        float *ln1 = a->ln1 + l * NC, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        float *qkv = a->qkv + l * N * QKV, *qkvp = at(a->qkvp, l, N * QKV);
        float *att = a->att + l * (size_t)B * H * T * T, *atty = a->atty + l * NC, *res2 = a->res2 + l * NC;
        float *ln2 = a->ln2 + l * NC, *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        float *fch = a->fch + l * N * F1, *fcg = a->fcg + l * N * F, *res3 = a->res3 + l * NC;

        /* attention sub-block */
        const float *attn_in = x;
        if (pre) {
            norm_forward(c, ln1, ln1_mean, ln1_rstd, x, w->ln1_w + l * C, cat(w->ln1_b, l, C), N, C);
            attn_in = ln1;
        }
        linear_forward(qkv, attn_in, w->wqkv + l * QKV * C, cat(w->bqkv, l, QKV), N, C, QKV);
        const float *q = qkv;
        if (c->qk_norm) {
            qknorm_forward(qkvp, a->qk_rstd + l * N * nqk, qkv, w->q_norm + l * hd, w->k_norm + l * hd, N, H, Hkv, hd,
                           (float)c->norm_eps);
            q = qkvp;
        }
        if (c->pos == POS_ROPE) {
            if (q != qkvp) memcpy(qkvp, qkv, N * QKV * sizeof(float));
            rope_forward(qkvp, m->rope_cos, m->rope_sin, B, T, QKV, nqk, hd, 0);
            q = qkvp;
        }
        if ((int)l < m->Lve) {
            if (q != qkvp) memcpy(qkvp, qkv, N * QKV * sizeof(float));
            value_mix_forward(qkvp, w->ve + l * V * Hkv * hd, w->ve_lambda + 2 * l, inputs, N, QKV, nqk * hd, Hkv * hd);
            q = qkvp;
        }
        attention_forward(atty, att, a->attn_scratch, q, B, T, H, Hkv, hd);
        linear_forward(res2, atty, w->wo + l * C * C, cat(w->bo, l, C), N, C, C);
        residual_forward(res2, res2, x, NC);

        /* MLP sub-block */
        const float *mlp_in;
        if (pre) {
            norm_forward(c, ln2, ln2_mean, ln2_rstd, res2, w->ln2_w + l * C, cat(w->ln2_b, l, C), N, C);
            mlp_in = ln2;
        } else {
            norm_forward(c, ln1, ln1_mean, ln1_rstd, res2, w->ln1_w + l * C, cat(w->ln1_b, l, C), N, C);
            mlp_in = ln1;
        }
        linear_forward(fch, mlp_in, w->wfc + l * F1 * C, cat(w->bfc, l, F1), N, C, F1);
        act_forward(c, fcg, fch, N, F);
        linear_forward(res3, fcg, w->wproj + l * C * F, cat(w->bproj, l, C), N, F, C);
        residual_forward(res3, res3, pre ? res2 : ln1, NC);
        if (pre) {
            x = res3;
        } else {
            norm_forward(c, ln2, ln2_mean, ln2_rstd, res3, w->ln2_w + l * C, cat(w->ln2_b, l, C), N, C);
            x = ln2;
        }
    }
    const float *h = x;
    if (pre) {
        norm_forward(c, a->lnf, a->lnf_mean, a->lnf_rstd, x, w->lnf_w, w->lnf_b, N, C);
        h = a->lnf;
    }
    const float *head = c->tie_embeddings ? w->wte : w->head;
    if (c->softcap > 0) {
        linear_forward(a->logits_raw, h, head, NULL, N, C, V);
        softcap_forward(a->probs, a->logits_raw, N * V, (float)c->softcap);
    } else {
        linear_forward(a->probs, h, head, NULL, N, C, V);
    }
    m->have_targets = targets != NULL;
    if (!targets) return 0.0f;
    memcpy(m->targets, targets, N * sizeof(int));
    crossentropy_softmax_forward(a->losses, a->probs, a->probs, targets, N, V);
    double sum = 0.0;
    size_t count = 0;
    for (size_t n = 0; n < N; n++)
        if (targets[n] >= 0) {
            sum += a->losses[n];
            count++;
        }
    m->mean_loss = count ? (float)(sum / (double)count) : 0.0f;
    return m->mean_loss;
}

/* ---------------------------------------------------------------- backward */

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

void transformer_backward(Transformer *m) {
    if (!m->have_targets) abort(); /* backward needs a forward with targets */
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    TransformerWeights *g = &m->g;
    TransformerActs *a = &m->a;
    int B = m->B, T = m->T;
    size_t N = (size_t)B * T, C = m->C, QKV = m->QKV, F = m->F, F1 = m->F1, V = m->V, hd = m->hd;
    size_t H = m->H, Hkv = m->Hkv, nqk = H + Hkv, NC = N * C, L = (size_t)m->L;
    int pre = c->norm_position == NORMPOS_PRE;

    size_t count = 0;
    for (size_t n = 0; n < N; n++) count += m->targets[n] >= 0;
    float dloss = count ? 1.0f / (float)count : 0.0f;

    /* loss: probs become dlogits in place */
    crossentropy_softmax_backward(a->probs, a->probs, m->targets, dloss, N, V);
    const float *dlogits = a->probs;
    if (c->softcap > 0) {
        zero(a->dlogits_raw, N * V);
        softcap_backward(a->dlogits_raw, a->probs, a->logits_raw, N * V, (float)c->softcap);
        dlogits = a->dlogits_raw;
    }
    /* head */
    const float *head = c->tie_embeddings ? w->wte : w->head;
    float *dhead = c->tie_embeddings ? g->wte : g->head;
    float *dres = a->dres, *dx1 = a->dx1, *dx2 = a->dx2, *tmp;
    zero(dres, NC);
    if (pre) {
        const float *xL = a->res3 + (L - 1) * NC;
        zero(dx1, NC);
        linear_backward(dx1, dhead, NULL, dlogits, a->lnf, head, N, C, V);
        norm_backward(c, dres, g->lnf_w, g->lnf_b, dx1, xL, w->lnf_w, a->lnf_mean, a->lnf_rstd, N, C);
    } else {
        linear_backward(dres, dhead, NULL, dlogits, a->ln2 + (L - 1) * NC, head, N, C, V);
    }

    for (size_t l = L; l-- > 0;) {
        const float *x_in = l == 0 ? a->encoded : (pre ? a->res3 + (l - 1) * NC : a->ln2 + (l - 1) * NC);
        const float *ln1 = a->ln1 + l * NC, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        const float *qkv = a->qkv + l * N * QKV, *qkvp = cat(a->qkvp, l, N * QKV);
        const float *att = a->att + l * (size_t)B * H * T * T, *atty = a->atty + l * NC, *res2 = a->res2 + l * NC;
        const float *ln2 = a->ln2 + l * NC, *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        const float *fch = a->fch + l * N * F1, *fcg = a->fcg + l * N * F, *res3 = a->res3 + l * NC;

        if (!pre) { /* x_out = norm2(res3) */
            zero(dx1, NC);
            norm_backward(c, dx1, g->ln2_w + l * C, at(g->ln2_b, l, C), dres, res3, w->ln2_w + l * C, ln2_mean,
                          ln2_rstd, N, C);
            tmp = dres, dres = dx1, dx1 = tmp;
        }
        /* dres = d res3; res3 = mlp_in + proj(act(fc(mlp_in)))  (pre: + res2) */
        const float *mlp_in = pre ? ln2 : ln1;
        zero(a->dfcg, N * F);
        linear_backward(a->dfcg, g->wproj + l * C * F, at(g->bproj, l, C), dres, fcg, w->wproj + l * C * F, N, F, C);
        zero(a->dfch, N * F1);
        act_backward(c, a->dfch, a->dfcg, fch, N, F);
        zero(dx1, NC);
        linear_backward(dx1, g->wfc + l * F1 * C, at(g->bfc, l, F1), a->dfch, mlp_in, w->wfc + l * F1 * C, N, C, F1);
        if (pre) { /* ln2 = norm2(res2); the residual path already carries dres */
            norm_backward(c, dres, g->ln2_w + l * C, at(g->ln2_b, l, C), dx1, res2, w->ln2_w + l * C, ln2_mean,
                          ln2_rstd, N, C);
        } else { /* ln1 = norm1(res2) fed both the MLP and the residual */
#pragma omp parallel for schedule(static) if (NC >= AP_PAR_MIN)
            for (size_t i = 0; i < NC; i++) dx1[i] += dres[i];
            zero(dx2, NC);
            norm_backward(c, dx2, g->ln1_w + l * C, at(g->ln1_b, l, C), dx1, res2, w->ln1_w + l * C, ln1_mean,
                          ln1_rstd, N, C);
            tmp = dres, dres = dx2, dx2 = tmp;
        }
        /* dres = d res2; res2 = x_in + wo(attention(qkv)) */
        zero(a->datty, NC);
        linear_backward(a->datty, g->wo + l * C * C, at(g->bo, l, C), dres, atty, w->wo + l * C * C, N, C, C);
        int processed = c->qk_norm || c->pos == POS_ROPE || (int)l < m->Lve;
        zero(a->dqkvp, N * QKV);
        attention_backward(a->dqkvp, a->attn_scratch, a->datty, processed ? qkvp : qkv, att, B, T, H, Hkv, hd);
        if ((int)l < m->Lve) /* values were mixed last: undo that first (qkv holds the un-mixed values) */
            value_mix_backward(a->dqkvp, g->ve + l * V * Hkv * hd, g->ve_lambda + 2 * l, qkv, w->ve + l * V * Hkv * hd,
                               w->ve_lambda + 2 * l, m->inputs, N, QKV, nqk * hd, Hkv * hd);
        if (c->pos == POS_ROPE) rope_backward(a->dqkvp, m->rope_cos, m->rope_sin, B, T, QKV, nqk, hd, 0);
        const float *dq = a->dqkvp;
        if (c->qk_norm) {
            zero(a->dqkv, N * QKV);
            qknorm_backward(a->dqkv, g->q_norm + l * hd, g->k_norm + l * hd, a->dqkvp, qkv, w->q_norm + l * hd,
                            w->k_norm + l * hd, a->qk_rstd + l * N * nqk, N, H, Hkv, hd);
            dq = a->dqkv;
        }
        if (pre) {
            zero(dx1, NC);
            linear_backward(dx1, g->wqkv + l * QKV * C, at(g->bqkv, l, QKV), dq, ln1, w->wqkv + l * QKV * C, N, C,
                            QKV);
            norm_backward(c, dres, g->ln1_w + l * C, at(g->ln1_b, l, C), dx1, x_in, w->ln1_w + l * C, ln1_mean,
                          ln1_rstd, N, C);
        } else {
            linear_backward(dres, g->wqkv + l * QKV * C, at(g->bqkv, l, QKV), dq, x_in, w->wqkv + l * QKV * C, N, C,
                            QKV);
        }
        /* dres = d x_in */
    }
    if (c->pos == POS_LEARNED) posemb_learned_backward(g->wpe, dres, B, T, C);
    embedding_backward(g->wte, dres, m->inputs, N, C, emb_scale(m));
}

void transformer_free(Transformer *m) {
    paramset_free(&m->ps);
    free(m->acts_mem);
    free(m->inputs);
    free(m->targets);
    free(m->rope_cos);
    free(m->rope_sin);
    m->acts_mem = m->rope_cos = m->rope_sin = NULL;
    m->inputs = m->targets = NULL;
}

/* ---------------------------------------------------------------- cached decoding */

int kvcache_create(KVCache *kv, const Transformer *m, Status *st) {
    memset(kv, 0, sizeof *kv);
    size_t L = m->L, T = m->Tmax, kvd = (size_t)m->Hkv * m->hd, C = m->C;
    size_t sizes[] = {L * T * kvd, L * T * kvd, C, C, (size_t)m->QKV + (size_t)(m->H + m->Hkv), T, C,
                      (size_t)m->F1, (size_t)m->F, (size_t)m->V};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 15) / 16 * 16;
    kv->mem = floats_alloc(total);
    if (!kv->mem) return status_fail(st, AP_ENOMEM, "cannot allocate the KV cache (%.1f MB)", total * 4.0 / 1e6);
    float **slots[] = {&kv->k, &kv->v, &kv->x, &kv->h, &kv->qkv, &kv->att, &kv->y, &kv->fch, &kv->fcg, &kv->logits};
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *slots[i] = kv->mem + off;
        off += (sizes[i] + 15) / 16 * 16;
    }
    kv->Tmax = m->Tmax;
    return 0;
}

void kvcache_free(KVCache *kv) {
    free(kv->mem);
    kv->mem = NULL;
}

/* The same kernels as training, called with one row: the cached path cannot drift from the
 * batched one except through summation order inside sgemm. */
void transformer_forward_token(const Transformer *m, KVCache *kv, int token, int pos) {
    const Config *c = &m->cfg;
    const TransformerWeights *w = &m->w;
    size_t C = m->C, QKV = m->QKV, F = m->F, F1 = m->F1, V = m->V, hd = m->hd, H = m->H, Hkv = m->Hkv;
    size_t nqk = H + Hkv, kvd = Hkv * hd, T = (size_t)kv->Tmax, group = H / Hkv;
    int pre = c->norm_position == NORMPOS_PRE;
    float mean, rstd, *x = kv->x, *h = kv->h, *qkv = kv->qkv, *qk_rstd = kv->qkv + QKV;
    float scale = 1.0f / sqrtf((float)hd);

    embedding_forward(x, &token, w->wte, 1, C, emb_scale(m));
    if (c->pos == POS_LEARNED)
        for (size_t i = 0; i < C; i++) x[i] += w->wpe[(size_t)pos * C + i];
    if (c->pos == POS_SINUSOIDAL) posemb_sinusoidal_forward(x, 1, 1, C, (size_t)pos);

    for (size_t l = 0; l < (size_t)m->L; l++) {
        const float *attn_in = x;
        if (pre) {
            norm_forward(c, h, &mean, &rstd, x, w->ln1_w + l * C, cat(w->ln1_b, l, C), 1, C);
            attn_in = h;
        }
        linear_forward(qkv, attn_in, w->wqkv + l * QKV * C, cat(w->bqkv, l, QKV), 1, C, QKV);
        if (c->qk_norm)
            qknorm_forward(qkv, qk_rstd, qkv, w->q_norm + l * hd, w->k_norm + l * hd, 1, H, Hkv, hd,
                           (float)c->norm_eps);
        if (c->pos == POS_ROPE) rope_forward(qkv, m->rope_cos, m->rope_sin, 1, 1, QKV, nqk, hd, (size_t)pos);
        if ((int)l < m->Lve)
            value_mix_forward(qkv, w->ve + l * V * kvd, w->ve_lambda + 2 * l, &token, 1, QKV, nqk * hd, kvd);
        float *kc = kv->k + l * T * kvd, *vc = kv->v + l * T * kvd;
        memcpy(kc + (size_t)pos * kvd, qkv + H * hd, kvd * sizeof(float));
        memcpy(vc + (size_t)pos * kvd, qkv + (H + Hkv) * hd, kvd * sizeof(float));
        for (size_t hh = 0; hh < H; hh++) {
            const float *q = qkv + hh * hd;
            size_t kh = hh / group;
            float mx = -INFINITY, sum = 0.0f, *s = kv->att;
            for (int t2 = 0; t2 <= pos; t2++) {
                const float *k = kc + (size_t)t2 * kvd + kh * hd;
                float d = 0.0f;
                for (size_t i = 0; i < hd; i++) d += q[i] * k[i];
                s[t2] = d * scale;
                if (s[t2] > mx) mx = s[t2];
            }
            for (int t2 = 0; t2 <= pos; t2++) {
                s[t2] = ap_expf(s[t2] - mx);
                sum += s[t2];
            }
            float *y = kv->y + hh * hd;
            for (size_t i = 0; i < hd; i++) y[i] = 0.0f;
            for (int t2 = 0; t2 <= pos; t2++) {
                float p = s[t2] / sum;
                const float *v = vc + (size_t)t2 * kvd + kh * hd;
                for (size_t i = 0; i < hd; i++) y[i] += p * v[i];
            }
        }
        linear_forward(h, kv->y, w->wo + l * C * C, cat(w->bo, l, C), 1, C, C);
        for (size_t i = 0; i < C; i++) h[i] += x[i]; /* h = residual after attention */
        const float *mlp_in;
        if (pre) {
            memcpy(x, h, C * sizeof(float));
            norm_forward(c, h, &mean, &rstd, x, w->ln2_w + l * C, cat(w->ln2_b, l, C), 1, C);
            mlp_in = h;
        } else {
            norm_forward(c, x, &mean, &rstd, h, w->ln1_w + l * C, cat(w->ln1_b, l, C), 1, C);
            mlp_in = x;
        }
        linear_forward(kv->fch, mlp_in, w->wfc + l * F1 * C, cat(w->bfc, l, F1), 1, C, F1);
        act_forward(c, kv->fcg, kv->fch, 1, F);
        linear_forward(kv->y, kv->fcg, w->wproj + l * C * F, cat(w->bproj, l, C), 1, F, C);
        /* pre: x (residual) += mlp;  post: x = norm2(ln1 + mlp) */
        for (size_t i = 0; i < C; i++) kv->y[i] += x[i];
        if (pre)
            memcpy(x, kv->y, C * sizeof(float));
        else
            norm_forward(c, x, &mean, &rstd, kv->y, w->ln2_w + l * C, cat(w->ln2_b, l, C), 1, C);
    }
    const float *hf = x;
    if (pre) {
        norm_forward(c, h, &mean, &rstd, x, w->lnf_w, w->lnf_b, 1, C);
        hf = h;
    }
    linear_forward(kv->logits, hf, c->tie_embeddings ? w->wte : w->head, NULL, 1, C, V);
    if (c->softcap > 0)
        for (size_t i = 0; i < V; i++) kv->logits[i] = (float)c->softcap * tanhf(kv->logits[i] / (float)c->softcap);
}
