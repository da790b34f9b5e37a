/* params.c - named tensors in one allocation (see params.h). */
#include "core/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float *floats_alloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void paramset_add(ParamSet *ps, const char *name, float **slot, float **grad_slot, int group, int init,
                  float init_scale, size_t d0, size_t d1, size_t d2) {
    if (ps->n >= PARAM_MAX_TENSORS) abort(); /* the table is sized for our models: a bug if full */
    ParamTensor *t = &ps->t[ps->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    size_t dims[3] = {d0, d1, d2};
    t->numel = 1;
    for (int i = 0; i < 3 && dims[i]; i++) {
        t->shape[t->ndim++] = dims[i];
        t->numel *= dims[i];
    }
    t->group = group;
    t->init = init;
    t->init_scale = init_scale;
    t->lr_mult = 1.0f;
    t->slot = slot;
    t->grad_slot = grad_slot;
    t->n_blocks = 1;
    t->block_rows[0] = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
}

void paramset_set_blocks(ParamSet *ps, int n, const size_t *rows) {
    ParamTensor *t = &ps->t[ps->n - 1];
    size_t sum = 0;
    for (int i = 0; i < n; i++) sum += rows[i];
    if (n < 1 || n > 4 || t->ndim < 2 || sum != t->shape[t->ndim - 2]) abort(); /* a model bug */
    t->n_blocks = n;
    for (int i = 0; i < n; i++) t->block_rows[i] = rows[i];
}

int paramset_alloc(ParamSet *ps, Status *st) {
    size_t off = 0;
    for (int i = 0; i < ps->n; i++) {
        ps->t[i].offset = off;
        off += (ps->t[i].numel + 15) / 16 * 16; /* keep every tensor 64-byte aligned */
    }
    ps->numel = off;
    ps->data = floats_alloc(off);
    ps->grad = floats_alloc(off);
    if (!ps->data || !ps->grad) {
        paramset_free(ps);
        return status_fail(st, AP_ENOMEM, "cannot allocate %zu parameters (%.1f MB x 2)", off, off * 4.0 / 1e6);
    }
    for (int i = 0; i < ps->n; i++) {
        if (ps->t[i].slot) *ps->t[i].slot = ps->data + ps->t[i].offset;
        if (ps->t[i].grad_slot) *ps->t[i].grad_slot = ps->grad + ps->t[i].offset;
    }
    return 0;
}

void paramset_init(ParamSet *ps, Rng *rng) {
    for (int i = 0; i < ps->n; i++) {
        ParamTensor *t = &ps->t[i];
        float *w = ps->data + t->offset;
        for (size_t j = 0; j < t->numel; j++) {
            switch (t->init) {
            case PINIT_ZEROS: w[j] = 0.0f; break;
            case PINIT_ONES: w[j] = 1.0f; break;
            case PINIT_NORMAL: w[j] = t->init_scale * rng_normal(rng); break;
            case PINIT_UNIFORM: w[j] = t->init_scale * (2.0f * rng_uniform(rng) - 1.0f); break;
            case PINIT_CONST: w[j] = t->init_scale; break;
            }
        }
    }
}

void paramset_zero_grad(ParamSet *ps) { memset(ps->grad, 0, ps->numel * sizeof(float)); }

const ParamTensor *paramset_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->t[i].name, name)) return &ps->t[i];
    return NULL;
}

void paramset_free(ParamSet *ps) {
    free(ps->data);
    free(ps->grad);
    ps->data = ps->grad = NULL;
}
