/* optim.c - SGD, Adam, AdamW, clipping (see optim.h). */
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_group_decays(int group) { return group != PGROUP_VECTOR; }

int optim_create(Optimizer *o, const Config *cfg, ParamSet *ps, Status *st) {
    memset(o, 0, sizeof *o);
    o->kind = cfg->optimizer;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->eps;
    o->weight_decay = cfg->weight_decay;
    o->momentum = cfg->momentum;
    o->ps = ps;
    o->m = floats_alloc(ps->numel);
    if (o->kind != OPT_SGD) o->v = floats_alloc(ps->numel);
    if (!o->m || (o->kind != OPT_SGD && !o->v)) {
        optim_free(o);
        return status_fail(st, AP_ENOMEM, "cannot allocate optimiser state (%zu parameters)", ps->numel);
    }
    return 0;
}

void optim_free(Optimizer *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* Fixed 64 chunks, whatever the thread count: each chunk summed in order, chunks summed in order. */
double optim_grad_norm(const ParamSet *ps) {
    enum { CHUNKS = 64 };
    double part[CHUNKS];
    size_t n = ps->numel;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        size_t i0 = n * (size_t)k / CHUNKS, i1 = n * (size_t)(k + 1) / CHUNKS;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++) s += (double)ps->grad[i] * ps->grad[i];
        part[k] = s;
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
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < ps->numel; i++) ps->grad[i] *= cf;
        }
    }
    return norm;
}

void optim_step(Optimizer *o, double lr) {
    o->t++;
    ParamSet *ps = o->ps;
    double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int ti = 0; ti < ps->n; ti++) {
        const ParamTensor *t = &ps->t[ti];
        float *p = ps->data + t->offset, *g = ps->grad + t->offset, *m = o->m + t->offset;
        float *v = o->v ? o->v + t->offset : NULL;
        float wd = optim_group_decays(t->group) ? (float)o->weight_decay : 0.0f;
        size_t n = t->numel;
        switch (o->kind) {
        case OPT_SGD: {
            float mom = (float)o->momentum, lrf = (float)lr;
            int first = o->t == 1;
#pragma omp parallel for schedule(static)
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
        case OPT_ADAM:
        case OPT_ADAMW: {
            int decoupled = o->kind == OPT_ADAMW;
            float shrink = (float)(1.0 - lr * (double)wd);
#pragma omp parallel for schedule(static)
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
