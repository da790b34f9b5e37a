/* optim.c - SGD, Adam, AdamW, clipping (see optim.h). */
#include "optim/optim.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_group_decays(int group) { return group != PGROUP_VECTOR && group != PGROUP_STATE; }

int optim_create(Optimizer *o, const Config *cfg, ParamSet *ps, Status *st) {
    memset(o, 0, sizeof *o);
    o->kind = cfg->optimizer;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->eps;
    o->weight_decay = cfg->weight_decay;
    o->momentum = cfg->momentum;
    o->muon_momentum = cfg->muon_momentum;
    o->adam_lr = cfg->adam_lr;
    o->lr_peak = cfg->lr;
    o->ps = ps;
    o->m = floats_alloc(ps->numel);
    if (o->kind != OPT_SGD && o->kind != OPT_LION) o->v = floats_alloc(ps->numel);
    if (o->kind == OPT_SCHEDULEFREE) {
        o->sf_lr_max = -1.0;
        if (o->m) memcpy(o->m, ps->data, ps->numel * sizeof(float)); /* z starts at the weights */
        if (!(o->eval_swap = floats_alloc(ps->numel))) {
            optim_free(o);
            return status_fail(st, AP_ENOMEM, "cannot allocate schedule-free's evaluation copy (%zu parameters)",
                               ps->numel);
        }
    }
    if (o->kind == OPT_MUON) { /* workspace for the largest matrix block */
        size_t need = 1;
        for (int i = 0; i < ps->n; i++) {
            const ParamTensor *t = &ps->t[i];
            if (t->group != PGROUP_MATRIX || t->ndim < 2) continue;
            size_t cols = t->shape[t->ndim - 1];
            for (int b = 0; b < t->n_blocks; b++) {
                size_t r = t->block_rows[b], k = r < cols ? r : cols, n = 3 * k * k + 2 * r * cols;
                if (n > need) need = n;
            }
        }
        o->ns = floats_alloc(need);
        if (!o->ns) {
            optim_free(o);
            return status_fail(st, AP_ENOMEM, "cannot allocate the Muon workspace");
        }
    }
    o->ema_decay = cfg->ema_decay;
    if (o->ema_decay > 0) {
        o->ema = floats_alloc(ps->numel), o->eval_swap = floats_alloc(ps->numel);
        if (!o->ema || !o->eval_swap) {
            optim_free(o);
            return status_fail(st, AP_ENOMEM, "cannot allocate the weights' average (ema_decay, %zu parameters)", ps->numel);
        }
        memcpy(o->ema, ps->data, ps->numel * sizeof(float));
    }
    if (!o->m || (o->kind != OPT_SGD && o->kind != OPT_LION && !o->v)) {
        optim_free(o);
        return status_fail(st, AP_ENOMEM, "cannot allocate optimiser state (%zu parameters)", ps->numel);
    }
    return 0;
}

void optim_free(Optimizer *o) {
    free(o->m);
    free(o->v);
    free(o->ns);
    free(o->ema);
    free(o->eval_swap);
    o->m = o->v = o->ns = o->ema = o->eval_swap = NULL;
}

/* The sum of x^2 in double, in a fixed order whatever the vector width: 16 running sums over
 * whole chunks of 16, added lane by lane, then the tail (a single chain of dependent adds was
 * 1-1.5% of a study's training steps). */
static double sum_squares(const float *x, size_t n) {
    double lane[16] = {0}, s = 0.0;
    size_t full = n / 16 * 16;
    for (size_t i = 0; i < full; i += 16)
#pragma omp simd
        for (size_t k = 0; k < 16; k++) lane[k] += (double)x[i + k] * x[i + k];
    for (size_t k = 0; k < 16; k++) s += lane[k];
    for (size_t i = full; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void muon_orthogonalize(float *out, const float *G, int rows, int cols, int steps, float *ws) {
    const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
    /* work on the wide orientation (k = rows <= cols) so the Gram matrix is the small one */
    int tr = rows > cols, k = tr ? cols : rows, n = tr ? rows : cols;
    float *A = ws, *A2 = A + (size_t)k * k, *Bm = A2 + (size_t)k * k, *X = Bm + (size_t)k * k, *Y = X + (size_t)k * n;
    double ss = sum_squares(G, (size_t)rows * cols);
    float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float v = G[(size_t)i * cols + j] * inv;
            if (tr) X[(size_t)j * n + i] = v;
            else X[(size_t)i * n + j] = v;
        }
    for (int s = 0; s < steps; s++) {
        /* A = X X^T;  B = b A + c A A;  X = a X + B X */
        gemm_sgemm(0, 1, (size_t)k, (size_t)k, (size_t)n, 1.0f, X, (size_t)n, X, (size_t)n, 0.0f, A, (size_t)k);
        gemm_sgemm(0, 0, (size_t)k, (size_t)k, (size_t)k, 1.0f, A, (size_t)k, A, (size_t)k, 0.0f, A2, (size_t)k);
        for (size_t i = 0; i < (size_t)k * k; i++) Bm[i] = b * A[i] + c * A2[i];
        memcpy(Y, X, (size_t)k * n * sizeof(float));
        gemm_sgemm(0, 0, (size_t)k, (size_t)n, (size_t)k, 1.0f, Bm, (size_t)k, Y, (size_t)n, a, X, (size_t)n);
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) out[(size_t)i * cols + j] = tr ? X[(size_t)j * n + i] : X[(size_t)i * n + j];
}

/* One Muon update of a (rows x cols) block: momentum buffer m, gradient g, parameter p. */
static void muon_block(Optimizer *o, float *p, const float *g, float *m, int rows, int cols, double lr, float wd) {
    size_t n = (size_t)rows * cols;
    float mu = (float)o->muon_momentum;
    int k = rows < cols ? rows : cols;
    /* u lives in the workspace's last slot, which muon_orthogonalize reads before it uses it */
    float *U = o->ns + 3 * (size_t)k * k + n;
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] + g[i];
        U[i] = g[i] + mu * m[i];
    }
    muon_orthogonalize(U, U, rows, cols, 5, o->ns);
    float scale = (float)(lr * sqrt(rows > cols ? (double)rows / cols : 1.0));
    float shrink = (float)(1.0 - lr * (double)wd);
    for (size_t i = 0; i < n; i++) p[i] = p[i] * shrink - scale * U[i];
}

/* Fixed 64 chunks, whatever the thread count: each chunk summed in a fixed order, chunks in order. */
double optim_grad_norm(const ParamSet *ps) {
    enum { CHUNKS = 64 };
    double part[CHUNKS];
    size_t n = ps->numel;
#pragma omp parallel for schedule(static) if (ps->numel >= AP_PAR_MIN)
    for (int k = 0; k < CHUNKS; k++) {
        size_t i0 = n * (size_t)k / CHUNKS, i1 = n * (size_t)(k + 1) / CHUNKS;
        part[k] = sum_squares(ps->grad + i0, i1 - i0);
    }
    double total = 0.0;
    for (int k = 0; k < CHUNKS; k++) total += part[k];
    return sqrt(total);
}

double optim_clip(ParamSet *ps, double max_norm) {
    double norm = optim_grad_norm(ps);
    if (max_norm > 0.0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float cf = (float)coef;
#pragma omp parallel for schedule(static) if (ps->numel >= AP_PAR_MIN)
            for (size_t i = 0; i < ps->numel; i++) ps->grad[i] *= cf;
        }
    }
    return norm;
}

/* Schedule-free AdamW (optim.h): one step of every tensor but the state ones. */
static void schedulefree_step(Optimizer *o, double lr) {
    ParamSet *ps = o->ps;
    double lr_t = lr * sqrt(1.0 - pow(o->beta2, (double)o->t));
    if (lr_t > o->sf_lr_max) o->sf_lr_max = lr_t;
    double w = o->sf_lr_max * o->sf_lr_max;
    o->sf_weight_sum += w;
    double c = o->sf_weight_sum > 0 ? w / o->sf_weight_sum : 0.0;
    float cf = (float)c, b2 = (float)o->beta2, eps = (float)o->eps;
    for (int ti = 0; ti < ps->n; ti++) {
        const ParamTensor *t = &ps->t[ti];
        if (t->group == PGROUP_STATE) continue;
        float *y = ps->data + t->offset, *g = ps->grad + t->offset, *z = o->m + t->offset, *v = o->v + t->offset;
        /* muP (lr_mult) scales the steps; the decay, inside d, is divided back so lr * wd stays */
        double mult = t->lr_mult;
        float ay = (float)(lr_t * mult * (o->beta1 * (1.0 - c) - 1.0)), lz = (float)(lr_t * mult);
        float wd = optim_group_decays(t->group) ? (float)(o->weight_decay / mult) : 0.0f;
        size_t n = t->numel;
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
            float d = g[i] / (sqrtf(v[i]) + eps) + wd * y[i];
            y[i] += cf * (z[i] - y[i]);
            y[i] += ay * d;
            z[i] -= lz * d;
        }
    }
}

void optim_step(Optimizer *o, double lr) {
    o->t++;
    if (o->kind == OPT_SCHEDULEFREE) {
        schedulefree_step(o, lr);
        return;
    }
    ParamSet *ps = o->ps;
    double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps, bc2_sqrt = (float)sqrt(bc2);
    for (int ti = 0; ti < ps->n; ti++) {
        const ParamTensor *t = &ps->t[ti];
        if (t->group == PGROUP_STATE) continue; /* the model moves it (model_end_step) */
        float *p = ps->data + t->offset, *g = ps->grad + t->offset, *m = o->m + t->offset;
        float *v = o->v ? o->v + t->offset : NULL;
        float wd = optim_group_decays(t->group) ? (float)o->weight_decay : 0.0f;
        size_t n = t->numel;
        int kind = o->kind;
        double step_lr = lr;
        if (kind == OPT_MUON) {
            if (t->group == PGROUP_MATRIX && t->ndim >= 2) {
                int cols = (int)t->shape[t->ndim - 1];
                size_t layers = t->ndim == 3 ? t->shape[0] : 1, per = t->shape[t->ndim - 2] * (size_t)cols, off = 0;
                for (size_t l = 0; l < layers; l++) {
                    off = l * per;
                    for (int b = 0; b < t->n_blocks; b++) {
                        int rows = (int)t->block_rows[b];
                        muon_block(o, p + off, g + off, m + off, rows, cols, lr, wd);
                        off += (size_t)rows * cols;
                    }
                }
                continue;
            }
            /* everything else: AdamW at adam_lr, following the same schedule */
            kind = OPT_ADAMW;
            if (o->adam_lr > 0 && o->lr_peak > 0) step_lr = o->adam_lr * lr / o->lr_peak;
        }
        /* muP scales a tensor's steps (lr_mult) but not its decoupled decay, which stays lr * wd */
        double rate = step_lr * t->lr_mult;
        switch (kind) {
        case OPT_SGD: {
            float mom = (float)o->momentum, lrf = (float)rate;
            int first = o->t == 1;
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
            for (size_t i = 0; i < n; i++) {
                float d = g[i] + wd * p[i];
                if (mom > 0.0f) {
                    m[i] = first ? d : mom * m[i] + d;
                    d = m[i];
                }
                p[i] -= lrf * d;
            }
            break;
        }
        case OPT_LION: { /* Chen et al. 2023: p -= lr sign(b1 m + (1-b1) g); m = b2 m + (1-b2) g */
            float shrink = (float)(1.0 - step_lr * (double)wd), lrf = (float)rate, b2l = (float)o->beta2;
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
            for (size_t i = 0; i < n; i++) {
                float u = b1 * m[i] + (1.0f - b1) * g[i];
                p[i] = p[i] * shrink - lrf * (float)((u > 0.0f) - (u < 0.0f));
                m[i] = b2l * m[i] + (1.0f - b2l) * g[i];
            }
            break;
        }
        case OPT_ADAM:
        case OPT_ADAMW: {
            int decoupled = kind == OPT_ADAMW;
            float shrink = (float)(1.0 - step_lr * (double)wd), step_size = (float)(rate / bc1);
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
            for (size_t i = 0; i < n; i++) {
                float gi = g[i];
                if (decoupled)
                    p[i] *= shrink;
                else
                    gi += wd * p[i];
                m[i] = m[i] * b1 + gi * (1.0f - b1);
                v[i] = v[i] * b2 + gi * gi * (1.0f - b2);
                float denom = sqrtf(v[i]) / bc2_sqrt + eps;
                p[i] -= step_size * m[i] / denom;
            }
            break;
        }
        }
    }
}

/* The average follows every parameter (state tensors too: an evaluation sees a consistent model). */
void optim_ema_update(Optimizer *o) {
    if (!o->ema) return;
    double d = (1.0 + (double)o->t) / (10.0 + (double)o->t);
    float a = (float)(d < o->ema_decay ? d : o->ema_decay), b = 1.0f - a;
    float *e = o->ema;
    const float *p = o->ps->data;
    size_t n = o->ps->numel;
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) e[i] = a * e[i] + b * p[i];
}

void optim_eval_weights_in(Optimizer *o) {
    if (!o->eval_swap || o->eval_in) return;
    size_t n = o->ps->numel;
    float *p = o->ps->data;
    memcpy(o->eval_swap, p, n * sizeof(float));
    if (o->ema) memcpy(p, o->ema, n * sizeof(float));
    else { /* schedulefree: x = y + (1 - 1/beta1)(z - y); y = z before the first step */
        float w = (float)(1.0 - 1.0 / o->beta1);
        for (int ti = 0; ti < o->ps->n; ti++) {
            const ParamTensor *t = &o->ps->t[ti];
            if (t->group == PGROUP_STATE) continue; /* moved by the model, not averaged */
            float *q = p + t->offset;
            const float *z = o->m + t->offset;
            size_t k = t->numel;
#pragma omp parallel for schedule(static) if (k >= AP_PAR_MIN)
            for (size_t i = 0; i < k; i++) q[i] += w * (z[i] - q[i]);
        }
    }
    o->eval_in = 1;
}

void optim_eval_weights_out(Optimizer *o) {
    if (!o->eval_swap || !o->eval_in) return;
    memcpy(o->ps->data, o->eval_swap, o->ps->numel * sizeof(float));
    o->eval_in = 0;
}

double optim_step_flops(const Config *cfg, const ParamSet *ps) {
    if (cfg->optimizer != OPT_MUON) return 0.0;
    double f = 0.0;
    for (int i = 0; i < ps->n; i++) {
        const ParamTensor *t = &ps->t[i];
        if (t->group != PGROUP_MATRIX || t->ndim < 2) continue;
        double cols = (double)t->shape[t->ndim - 1], layers = t->ndim == 3 ? (double)t->shape[0] : 1.0;
        for (int b = 0; b < t->n_blocks; b++) {
            double r = (double)t->block_rows[b], k = r < cols ? r : cols, n = r < cols ? cols : r;
            f += layers * 5.0 * (2 * k * k * n + 2 * k * k * k + 2 * k * k * n);
        }
    }
    return f;
}

double schedule_lr(const Config *c, int step) {
    double lr = c->lr, lo = c->min_lr_frac;
    int warm = c->warmup, steps = c->steps;
    if (warm > 0 && step < warm) return lr * (double)(step + 1) / (double)warm;
    double span = steps - warm > 1 ? (double)(steps - warm) : 1.0;
    double p = (double)(step - warm) / span;
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    switch (c->schedule) {
    case SCHED_CONSTANT: return lr;
    case SCHED_LINEAR: return lr * (1.0 - (1.0 - lo) * p);
    case SCHED_COSINE: return lr * (lo + (1.0 - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * p)));
    case SCHED_INVSQRT: /* Vaswani et al.: peak at the end of warmup, then ~ 1/sqrt(step) */
        return lr * sqrt((double)(warm > 0 ? warm : 1)) / sqrt((double)step + 1.0);
    case SCHED_WSD: {
        int decay_steps = (int)lround(c->decay_frac * steps);
        int start = steps - decay_steps;
        if (start < warm) start = warm;
        if (step < start || steps <= start) return lr;
        double q = (double)(step - start) / (double)(steps - start);
        return lr * (1.0 - (1.0 - lo) * q);
    }
    }
    return lr;
}
