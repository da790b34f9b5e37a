/* lstm.c - forward, backward through time and decoding of the LSTM language model (see lstm.h).
 *
 * Per layer and time step t (gates packed i, f, g, o in rows of 4H):
 *   z = W_ih x_t + b + W_hh r_{t-1}
 *   i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
 *   c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  r_t = W_p h_t (LSTMP) or h_t */
#include "models/lstm.h"

#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/small_gemm.h"
#include "models/layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lstm_set_sizes(Lstm *m, const Config *cfg) {
    m->cfg = *cfg;
    m->E = cfg->d_model;
    m->H = cfg->lstm_hidden ? cfg->lstm_hidden : cfg->d_model;
    m->R = cfg->lstm_proj ? cfg->d_model : m->H;
    m->L = cfg->n_layers;
    m->V = cfg->vocab;
}

static void lstm_declare(Lstm *m, const Config *cfg) {
    lstm_set_sizes(m, cfg);
    size_t E = m->E, H = m->H, R = m->R, V = m->V;
    float k = 1.0f / sqrtf((float)H); /* PyTorch's LSTM initialisation bound */
    ParamSet *ps = &m->ps;
    paramset_add(ps, "wte", &m->w.wte, &m->g.wte, PGROUP_EMBED, PINIT_NORMAL, (float)cfg->init_std, V, E, 0);
    for (int l = 0; l < m->L && l < LSTM_MAX_LAYERS; l++) {
        char name[32];
        size_t in = l == 0 ? E : R;
        snprintf(name, sizeof name, "l%d.w_ih", l);
        paramset_add(ps, name, &m->w.w_ih[l], &m->g.w_ih[l], PGROUP_MATRIX, PINIT_UNIFORM, k, 4 * H, in, 0);
        snprintf(name, sizeof name, "l%d.w_hh", l);
        paramset_add(ps, name, &m->w.w_hh[l], &m->g.w_hh[l], PGROUP_MATRIX, PINIT_UNIFORM, k, 4 * H, R, 0);
        snprintf(name, sizeof name, "l%d.b", l);
        paramset_add(ps, name, &m->w.b[l], &m->g.b[l], PGROUP_VECTOR, PINIT_ZEROS, 0, 4 * H, 0, 0);
        if (cfg->lstm_proj) {
            snprintf(name, sizeof name, "l%d.w_p", l);
            paramset_add(ps, name, &m->w.w_p[l], &m->g.w_p[l], PGROUP_MATRIX, PINIT_UNIFORM, k, R, H, 0);
        }
    }
    if (!cfg->tie_embeddings)
        paramset_add(ps, "head", &m->w.head, &m->g.head, PGROUP_HEAD, PINIT_NORMAL, (float)cfg->init_std, V, R, 0);
}

void lstm_param_table(const Config *cfg, ParamSet *out) {
    Lstm *m = calloc(1, sizeof *m);
    if (!m) abort();
    lstm_declare(m, cfg);
    *out = m->ps;
    free(m);
}

int lstm_create(Lstm *m, const Config *cfg, Rng *rng, Status *st) {
    memset(m, 0, sizeof *m);
    if (cfg->n_layers > LSTM_MAX_LAYERS)
        return status_fail(st, AP_EINVAL, "n_layers=%d: an LSTM has at most %d", cfg->n_layers, LSTM_MAX_LAYERS);
    if (cfg->vocab < 2) return status_fail(st, AP_EINVAL, "vocab=%d: the tokenizer must set it first", cfg->vocab);
    lstm_declare(m, cfg);
    if (cfg->tie_embeddings && m->R != m->E)
        return status_fail(st, AP_EINVAL,
                           "tie_embeddings needs the LSTM output width (%d) to equal d_model (%d): use lstm_proj or "
                           "lstm_hidden = d_model",
                           m->R, m->E);
    if (paramset_alloc(&m->ps, st)) return -1;
    paramset_init(&m->ps, rng);
    /* forget-gate bias 1: start by remembering (Gers et al. 2000; Jozefowicz et al. 2015) */
    for (int l = 0; l < m->L; l++)
        for (size_t j = (size_t)m->H; j < 2 * (size_t)m->H; j++) m->w.b[l][j] = 1.0f;
    return 0;
}

double lstm_step_flops_forward(const Config *c, int B, int T) {
    double E = c->d_model, H = c->lstm_hidden ? c->lstm_hidden : c->d_model, R = c->lstm_proj ? c->d_model : H;
    double N = (double)B * T, macs = 0;
    for (int l = 0; l < c->n_layers; l++) {
        double in = l == 0 ? E : R;
        macs += N * (in * 4 * H + R * 4 * H + (c->lstm_proj ? H * R : 0));
    }
    macs += N * R * c->vocab;
    return 2.0 * macs;
}

/* The activation table, shared by the allocation and the memory estimate: returns the floats
 * needed for batch B x T and, with mem non-NULL, points every slot into mem. */
static size_t lstm_layout(Lstm *m, size_t B, size_t T, float *mem) {
    size_t N = B * T, E = m->E, H = m->H, R = m->R, V = m->V, L = m->L, X = E > R ? E : R;
    int proj = m->cfg.lstm_proj, cap = m->cfg.softcap > 0;
    LayoutSlot table[5 * LSTM_MAX_LAYERS + 19];
    size_t n = 0;
    if (L > LSTM_MAX_LAYERS) abort(); /* config_resolve rejects deeper LSTMs */
#define SLOT(p, sz) (table[n++] = (LayoutSlot){&(p), (sz)})
    SLOT(m->x0, N * E);
    for (size_t l = 0; l < L; l++) {
        SLOT(m->G[l], N * 4 * H);
        SLOT(m->C[l], N * H);
        SLOT(m->TC[l], N * H);
        SLOT(m->Hh[l], proj ? N * H : 0);
        SLOT(m->Y[l], N * R);
    }
    SLOT(m->h0, L * B * R);
    SLOT(m->c0, L * B * H);
    SLOT(m->carry_h, L * B * R);
    SLOT(m->carry_c, L * B * H);
    SLOT(m->logits_raw, cap ? N * V : 0);
    SLOT(m->probs, N * V);
    SLOT(m->losses, N);
    SLOT(m->w_hh_t, R * 4 * H);
    SLOT(m->dG, N * 4 * H);
    SLOT(m->dR, N * R);
    SLOT(m->dY, N * X);
    SLOT(m->dX, N * X);
    SLOT(m->hprev, N * R);
    SLOT(m->dh, B * H);
    SLOT(m->dc, B * H);
    SLOT(m->dh_next, B * R);
    SLOT(m->dc_next, B * H);
    SLOT(m->dlogits_raw, cap ? N * V : 0);
#undef SLOT
    return layout_carve(table, n, mem);
}

size_t lstm_activation_floats(const Config *cfg, int B, int T) {
    Lstm *m = calloc(1, sizeof *m);
    if (!m) abort();
    lstm_set_sizes(m, cfg);
    size_t n = lstm_layout(m, (size_t)B, (size_t)T, NULL);
    free(m);
    return n;
}

int lstm_prepare(Lstm *m, int B, int T, Status *st) {
    if (B < 1 || T < 1) return status_fail(st, AP_EINVAL, "batch shape %dx%d", B, T);
    if (m->mem && B == m->B && T == m->T) return 0;
    free(m->mem);
    free(m->inputs);
    free(m->targets);
    size_t N = (size_t)B * T, total = lstm_layout(m, (size_t)B, (size_t)T, NULL);
    m->mem = floats_alloc(total);
    m->inputs = malloc(N * sizeof(int));
    m->targets = malloc(N * sizeof(int));
    if (!m->mem || !m->inputs || !m->targets) {
        free(m->mem), free(m->inputs), free(m->targets);
        m->mem = NULL, m->inputs = m->targets = NULL;
        return status_fail(st, AP_ENOMEM, "cannot allocate LSTM activations for batch %dx%d (%.1f MB)", B, T,
                           total * 4.0 / 1e6);
    }
    lstm_layout(m, (size_t)B, (size_t)T, m->mem);
    m->mem_numel = total;
    m->B = B;
    m->T = T;
    return 0;
}

void lstm_reset_state(Lstm *m) {
    if (!m->mem) return;
    memset(m->carry_h, 0, (size_t)m->L * m->B * m->R * sizeof(float));
    memset(m->carry_c, 0, (size_t)m->L * m->B * m->H * sizeof(float));
}

/* The LM head on N rows of the last layer's output: logits (N, V), soft-capped from logits_raw. */
static void head_forward(const Lstm *m, float *logits, float *logits_raw, const float *y, size_t N) {
    const Config *c = &m->cfg;
    const float *head = c->tie_embeddings ? m->w.wte : m->w.head;
    size_t R = m->R, V = m->V;
    if (c->softcap > 0) {
        linear_forward(logits_raw, y, head, NULL, N, R, V);
        softcap_forward(logits, logits_raw, N * V, (float)c->softcap);
    } else {
        linear_forward(logits, y, head, NULL, N, R, V);
    }
}

/* Wt (cols, rows) = W (rows, cols)^T, in 32 x 32 blocks so both sides stay in cache. */
static void transpose(float *Wt, const float *W, size_t rows, size_t cols) {
    for (size_t i0 = 0; i0 < rows; i0 += 32)
        for (size_t j0 = 0; j0 < cols; j0 += 32)
            for (size_t i = i0; i < rows && i < i0 + 32; i++)
                for (size_t j = j0; j < cols && j < j0 + 32; j++) Wt[j * rows + i] = W[i * cols + j];
}

float lstm_forward(Lstm *m, const int *inputs, const int *targets, int B, int T, int stateful) {
    if (B != m->B || T != m->T || !m->mem) abort(); /* activations are laid out for the prepared shape */
    const Config *c = &m->cfg;
    size_t N = (size_t)B * T, E = m->E, H = m->H, R = m->R, V = m->V, H4 = 4 * H;
    memcpy(m->inputs, inputs, N * sizeof(int));
    embedding_forward(m->x0, inputs, m->w.wte, N, E, 1.0f);
    for (int l = 0; l < m->L; l++) {
        const float *in = l == 0 ? m->x0 : m->Y[l - 1];
        size_t in_dim = l == 0 ? E : R;
        float *h0 = m->h0 + (size_t)l * B * R, *c0 = m->c0 + (size_t)l * B * H;
        if (stateful) {
            memcpy(h0, m->carry_h + (size_t)l * B * R, (size_t)B * R * sizeof(float));
            memcpy(c0, m->carry_c + (size_t)l * B * H, (size_t)B * H * sizeof(float));
        } else {
            memset(h0, 0, (size_t)B * R * sizeof(float));
            memset(c0, 0, (size_t)B * H * sizeof(float));
        }
        float *G = m->G[l], *C = m->C[l], *TC = m->TC[l], *Y = m->Y[l], *Hh = c->lstm_proj ? m->Hh[l] : Y;
        linear_forward(G, in, m->w.w_ih[l], m->w.b[l], N, in_dim, H4); /* the input half of z, all steps at once */
        int tiled = small_gemm_tiled((size_t)B);
        if (tiled) transpose(m->w_hh_t, m->w.w_hh[l], H4, R);
        for (size_t t = 0; t < (size_t)T; t++) {
            /* step t reads r_{t-1}, c_{t-1}: the chunk's initial state (B, .) at t = 0 */
            const float *r_prev = t == 0 ? h0 : Y + (t - 1) * R, *c_prev = t == 0 ? c0 : C + (t - 1) * H;
            size_t prev_T = t == 0 ? 1 : (size_t)T;
            if (tiled)
                small_gemm((size_t)B, H4, R, r_prev, prev_T * R, m->w_hh_t, H4, G + t * H4, (size_t)T * H4, 1);
            else
                gemm_sgemm(0, 1, (size_t)B, H4, R, 1.0f, r_prev, prev_T * R, m->w.w_hh[l], R, 1.0f, G + t * H4,
                           (size_t)T * H4);
            lstm_cell_forward(Hh + t * H, C + t * H, TC + t * H, G + t * H4, c_prev, (size_t)B, H, T * H, prev_T * H);
            if (c->lstm_proj)
                gemm_sgemm(0, 1, (size_t)B, R, H, 1.0f, Hh + t * H, (size_t)T * H, m->w.w_p[l], H, 0.0f, Y + t * R,
                           (size_t)T * R);
        }
        if (stateful)
            for (int b = 0; b < B; b++) {
                memcpy(m->carry_h + ((size_t)l * B + b) * R, Y + ((size_t)b * T + T - 1) * R, R * sizeof(float));
                memcpy(m->carry_c + ((size_t)l * B + b) * H, C + ((size_t)b * T + T - 1) * H, H * sizeof(float));
            }
    }
    head_forward(m, m->probs, m->logits_raw, m->Y[m->L - 1], N);
    m->have_targets = targets != NULL;
    if (!targets) return 0.0f;
    memcpy(m->targets, targets, N * sizeof(int));
    crossentropy_softmax_forward(m->losses, m->probs, m->probs, targets, N, V);
    double sum = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < N; i++)
        if (targets[i] >= 0) sum += m->losses[i], count++;
    return count ? (float)(sum / (double)count) : 0.0f;
}

void lstm_backward(Lstm *m) {
    if (!m->have_targets) abort();
    const Config *c = &m->cfg;
    int B = m->B, T = m->T;
    size_t N = (size_t)B * T, E = m->E, H = m->H, R = m->R, V = m->V, H4 = 4 * H;
    size_t count = 0;
    for (size_t i = 0; i < N; i++) count += m->targets[i] >= 0;
    crossentropy_softmax_backward(m->probs, m->probs, m->targets, count ? 1.0f / (float)count : 0.0f, N, V);
    const float *dlogits = m->probs;
    if (c->softcap > 0) {
        softcap_backward(m->dlogits_raw, GRAD_SET, m->probs, m->logits_raw, N * V, (float)c->softcap);
        dlogits = m->dlogits_raw;
    }
    const float *head = c->tie_embeddings ? m->w.wte : m->w.head;
    float *dhead = c->tie_embeddings ? m->g.wte : m->g.head;
    float *dY = m->dY, *dX = m->dX, *tmp;
    linear_backward(dY, GRAD_SET, dhead, NULL, dlogits, m->Y[m->L - 1], head, N, R, V);
    for (int l = m->L - 1; l >= 0; l--) {
        const float *in = l == 0 ? m->x0 : m->Y[l - 1];
        size_t in_dim = l == 0 ? E : R;
        const float *G = m->G[l], *C = m->C[l], *TC = m->TC[l], *Y = m->Y[l];
        const float *h0 = m->h0 + (size_t)l * B * R, *c0 = m->c0 + (size_t)l * B * H;
        float *dG = m->dG, *dR = m->dR, *dh = m->dh, *dh_next = m->dh_next, *dc_next = m->dc_next;
        memset(dh_next, 0, (size_t)B * R * sizeof(float));
        memset(dc_next, 0, (size_t)B * H * sizeof(float));
        for (int t = T - 1; t >= 0; t--) {
            for (int b = 0; b < B; b++) { /* dr = dY_t + gradient from step t+1 */
                float *dr = dR + ((size_t)b * T + t) * R;
                const float *dy = dY + ((size_t)b * T + t) * R, *dn = dh_next + (size_t)b * R;
                for (size_t j = 0; j < R; j++) dr[j] = dy[j] + dn[j];
            }
            if (c->lstm_proj)
                gemm_sgemm(0, 0, (size_t)B, H, R, 1.0f, dR + (size_t)t * R, (size_t)T * R, m->w.w_p[l], H, 0.0f, dh, H);
            else
                for (int b = 0; b < B; b++) memcpy(dh + (size_t)b * H, dR + ((size_t)b * T + t) * R, H * sizeof(float));
            /* dc_next: the gradient of c_t from step t+1 in, that of c_{t-1} out */
            size_t ts = (size_t)t, ld = (size_t)T * H;
            const float *c_prev = t == 0 ? c0 : C + (ts - 1) * H;
            lstm_cell_backward(dG + ts * H4, dc_next, dh, dc_next, G + ts * H4, c_prev, TC + ts * H, (size_t)B, H, ld,
                               t == 0 ? H : ld);
            if (small_gemm_tiled((size_t)B))
                small_gemm((size_t)B, R, H4, dG + (size_t)t * H4, (size_t)T * H4, m->w.w_hh[l], R, dh_next, R, 0);
            else
                gemm_sgemm(0, 0, (size_t)B, R, H4, 1.0f, dG + (size_t)t * H4, (size_t)T * H4, m->w.w_hh[l], R, 0.0f,
                           dh_next, R);
        }
        /* weight gradients of all steps at once: r_{t-1} is h0 for t = 0, else the previous output */
        for (int b = 0; b < B; b++) {
            memcpy(m->hprev + (size_t)b * T * R, h0 + (size_t)b * R, R * sizeof(float));
            memcpy(m->hprev + ((size_t)b * T + 1) * R, Y + (size_t)b * T * R, (size_t)(T - 1) * R * sizeof(float));
        }
        gemm_sgemm(1, 0, H4, R, N, 1.0f, dG, H4, m->hprev, R, 1.0f, m->g.w_hh[l], R);
        if (c->lstm_proj)
            gemm_sgemm(1, 0, R, H, N, 1.0f, dR, R, m->Hh[l], H, 1.0f, m->g.w_p[l], H);
        linear_backward(dX, GRAD_SET, m->g.w_ih[l], m->g.b[l], dG, in, m->w.w_ih[l], N, in_dim, H4);
        tmp = dY, dY = dX, dX = tmp; /* this layer's input gradient is the output gradient below */
    }
    embedding_backward(m->g.wte, dY, m->inputs, N, E, 1.0f);
}

void lstm_free(Lstm *m) {
    paramset_free(&m->ps);
    free(m->mem);
    free(m->inputs);
    free(m->targets);
    m->mem = NULL;
    m->inputs = m->targets = NULL;
}

size_t lstm_token_scratch_floats(const Lstm *m) {
    return (size_t)m->E + 10 * (size_t)m->H + (m->cfg.softcap > 0 ? (size_t)m->V : 0);
}

/* The training forward at B = T = 1 from the state (h, c), which it updates in place. Its
 * products have one row, so they go through linear_forward's matrix-vector path (a one-row
 * sgemm would pack the weights on every token); the cell and the head are training's. */
void lstm_forward_token(const Lstm *m, float *h, float *c, float *scratch, int token, float *logits) {
    size_t E = m->E, H = m->H, R = m->R, H4 = 4 * H;
    float *x = scratch, *z = x + E, *zh = z + H4, *hh = zh + H4, *tc = hh + H, *logits_raw = tc + H;
    int proj = m->cfg.lstm_proj;
    embedding_forward(x, &token, m->w.wte, 1, E, 1.0f);
    for (int l = 0; l < m->L; l++) {
        float *r = h + (size_t)l * R, *cl = c + (size_t)l * H;
        const float *in = l == 0 ? x : r - R; /* layer l-1's output at this step */
        linear_forward(z, in, m->w.w_ih[l], m->w.b[l], 1, l == 0 ? E : R, H4);
        linear_forward(zh, r, m->w.w_hh[l], NULL, 1, R, H4);
        residual_forward(z, z, zh, H4);
        lstm_cell_forward(proj ? hh : r, cl, tc, z, cl, 1, H, H, H);
        if (proj) linear_forward(r, hh, m->w.w_p[l], NULL, 1, H, R);
    }
    head_forward(m, logits, logits_raw, h + (size_t)(m->L - 1) * R, 1);
}
