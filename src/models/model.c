/* model.c - dispatch to the model families (see model.h). */
#include "models/model.h"

#include "kernels/gemm.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static GemmLib gemm_lib_of(int key) {
    switch (key) {
    case GEMMLIB_ONEDNN: return GEMM_ONEDNN;
    case GEMMLIB_OPENBLAS: return GEMM_OPENBLAS;
    default: return GEMM_AUTO;
    }
}

int model_create(Model *m, const Config *cfg, Rng *rng, Status *st) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (gemm_use(gemm_lib_of(cfg->gemm), st)) return -1;
    if (gemm_set_precision(cfg->precision == PRECISION_BF16 ? GEMM_BF16 : GEMM_FP32, st)) return -1;
    if (cfg->family == FAMILY_LSTM) {
        m->lstm = calloc(1, sizeof *m->lstm);
        if (!m->lstm) return status_fail(st, AP_ENOMEM, "out of memory");
        if (lstm_create(m->lstm, cfg, rng, st)) {
            model_free(m);
            return -1;
        }
        m->ps = &m->lstm->ps;
        return 0;
    }
    m->tf = calloc(1, sizeof *m->tf);
    if (!m->tf) return status_fail(st, AP_ENOMEM, "out of memory");
    if (transformer_create(m->tf, cfg, rng, st)) {
        model_free(m);
        return -1;
    }
    m->ps = &m->tf->ps;
    return 0;
}

int model_prepare(Model *m, int B, int T, Status *st) {
    return m->lstm ? lstm_prepare(m->lstm, B, T, st) : transformer_prepare(m->tf, B, T, st);
}

float model_forward(Model *m, const int *inputs, const int *targets, int B, int T, int stateful) {
    if (m->lstm) return lstm_forward(m->lstm, inputs, targets, B, T, stateful);
    return transformer_forward(m->tf, inputs, targets, B, T);
}

void model_backward(Model *m) {
    if (m->lstm)
        lstm_backward(m->lstm);
    else
        transformer_backward(m->tf);
}

const float *model_losses(const Model *m) { return m->lstm ? m->lstm->losses : m->tf->a.losses; }
const float *model_logits(const Model *m) { return m->lstm ? m->lstm->probs : m->tf->a.probs; }

void model_free(Model *m) {
    if (m->lstm) lstm_free(m->lstm);
    if (m->tf) transformer_free(m->tf);
    free(m->lstm);
    free(m->tf);
    m->lstm = NULL;
    m->tf = NULL;
    m->ps = NULL;
}

void model_set_window(Model *m, int window) {
    if (m->tf) m->tf->cfg.window = window;
}

StepFlops model_step_flops(const Config *cfg, int B, int T) {
    if (cfg->family == FAMILY_LSTM) {
        StepFlops f = {0};
        f.forward = lstm_step_flops_forward(cfg, B, T);
        f.backward = 2.0 * f.forward;
        return f;
    }
    return transformer_step_flops(cfg, B, T);
}

void model_end_step(Model *m) {
    if (m->tf) transformer_end_step(m->tf);
}

float *model_expert_loads(Model *m, size_t *n) {
    *n = m->tf && m->tf->E > 0 ? (size_t)m->tf->Lm * m->tf->E : 0;
    return *n ? m->tf->moe_load : NULL;
}

void model_moe_stats(const Model *m, double *aux_loss, double *load_max) {
    *aux_loss = *load_max = NAN;
    const Transformer *t = m->tf;
    if (!t || t->E == 0) return;
    *aux_loss = t->aux_loss;
    *load_max = 0.0;
    for (size_t mi = 0; mi < (size_t)t->Lm; mi++) {
        const float *load = t->moe_load + mi * t->E;
        double sum = 0.0, top = 0.0;
        for (int e = 0; e < t->E; e++) sum += load[e], top = load[e] > top ? load[e] : top;
        if (sum > 0 && top * t->E / sum > *load_max) *load_max = top * t->E / sum;
    }
}

size_t model_active_params(const Config *cfg) {
    if (cfg->family == FAMILY_LSTM) {
        size_t total, ne;
        model_count_params(cfg, &total, &ne);
        return total;
    }
    return transformer_active_params(cfg);
}

size_t model_total_params(const Model *m) {
    size_t n = 0;
    for (int i = 0; i < m->ps->n; i++) n += m->ps->t[i].numel;
    return n;
}

void model_param_table(const Config *cfg, ParamSet *out) {
    if (cfg->family == FAMILY_LSTM)
        lstm_param_table(cfg, out);
    else
        transformer_param_table(cfg, out);
}

/* One convention for every arm (docs/RECIPES.md): N excludes the token/position/value embeddings and
 * the output head, tied or not, so an untied head does not make a recipe look bigger. */
static int counts_as_n(int group) { return group != PGROUP_EMBED && group != PGROUP_HEAD; }

void model_count_params(const Config *cfg, size_t *total, size_t *nonembedding) {
    ParamSet ps;
    model_param_table(cfg, &ps);
    *total = *nonembedding = 0;
    for (int i = 0; i < ps.n; i++) {
        *total += ps.t[i].numel;
        if (counts_as_n(ps.t[i].group)) *nonembedding += ps.t[i].numel;
    }
}

size_t model_kaplan_params(const Config *cfg) {
    ParamSet ps;
    model_param_table(cfg, &ps);
    size_t n = 0;
    for (int i = 0; i < ps.n; i++)
        if (ps.t[i].group != PGROUP_EMBED) n += ps.t[i].numel;
    return n;
}

MemoryEstimate model_memory_estimate(const Config *cfg, int B, int T) {
    size_t total = 0, nonemb = 0;
    model_count_params(cfg, &total, &nonemb);
    MemoryEstimate e;
    e.params = e.grads = 4.0 * (double)total;
    /* Adam-family: two moments; SGD: momentum; Muon: both, plus a workspace below one matrix */
    e.optimizer = (cfg->optimizer == OPT_SGD || cfg->optimizer == OPT_LION ? 1.0 : 2.0) * e.params;
    /* the weights evaluations use, and a copy of the training weights while they are in */
    if (cfg->ema_decay > 0) e.optimizer += 2.0 * e.params;
    if (cfg->optimizer == OPT_SCHEDULEFREE) e.optimizer += e.params;
    if (cfg->optimizer == OPT_MUON) e.optimizer += 5.0 * 4.0 * (double)nonemb / (cfg->n_layers > 0 ? cfg->n_layers : 1);
    double acts = cfg->family == FAMILY_LSTM ? (double)lstm_activation_floats(cfg, B, T)
                                             : (double)transformer_activation_floats(cfg, B, T);
    e.activations = 4.0 * acts;
    /* batch and evaluation buffers, the data, the code: a fixed allowance */
    e.total = e.params + e.grads + e.optimizer + e.activations + 64e6;
    return e;
}

size_t model_nonembedding_params(const Model *m) {
    size_t n = 0;
    for (int i = 0; i < m->ps->n; i++)
        if (counts_as_n(m->ps->t[i].group)) n += m->ps->t[i].numel;
    return n;
}

size_t model_activation_numel(const Model *m) { return m->lstm ? m->lstm->mem_numel : m->tf->acts_numel; }

int model_is_stateful(const Config *cfg) { return cfg->family == FAMILY_LSTM && cfg->lstm_state == LSTM_STATE_CARRY; }

void model_reset_state(Model *m) {
    if (m->lstm) lstm_reset_state(m->lstm);
}

void model_state_tensors(const Model *m, TensorList *l) {
    if (!m->lstm || !m->lstm->mem) return;
    const Lstm *s = m->lstm;
    uint64_t sh[2] = {(uint64_t)s->L * s->B, (uint64_t)s->R}, sc[2] = {(uint64_t)s->L * s->B, (uint64_t)s->H};
    tensorlist_add(l, "s.h", TF_F32, s->carry_h, 2, sh);
    tensorlist_add(l, "s.c", TF_F32, s->carry_c, 2, sc);
}

int model_restore_state(Model *m, const TensorFile *f, Status *st) {
    if (!m->lstm) return 0;
    Lstm *s = m->lstm;
    const TensorEntry *h = tensorfile_find(f, "s.h"), *c = tensorfile_find(f, "s.c");
    size_t nh = (size_t)s->L * s->B * s->R, nc = (size_t)s->L * s->B * s->H;
    if (!h || !c || h->nbytes != nh * sizeof(float) || c->nbytes != nc * sizeof(float))
        return status_fail(st, AP_ECORRUPT, "checkpoint lacks the LSTM state (s.h, s.c) for this batch shape");
    memcpy(s->carry_h, h->data, h->nbytes);
    memcpy(s->carry_c, c->data, c->nbytes);
    return 0;
}

int decoder_create(Decoder *d, const Model *m, Status *st) {
    memset(d, 0, sizeof *d);
    d->m = m;
    if (m->tf) {
        if (kvcache_create(&d->kv, m->tf, st)) return -1;
        d->logits = d->kv.logits;
        d->max_pos = m->tf->Tmax;
        return 0;
    }
    const Lstm *s = m->lstm;
    d->h = calloc((size_t)s->L * s->R, sizeof(float));
    d->c = calloc((size_t)s->L * s->H, sizeof(float));
    d->scratch = calloc(lstm_token_scratch_floats(s), sizeof(float));
    d->logits_buf = calloc((size_t)s->V, sizeof(float));
    if (!d->h || !d->c || !d->scratch || !d->logits_buf) {
        decoder_free(d);
        return status_fail(st, AP_ENOMEM, "out of memory for decoding");
    }
    d->logits = d->logits_buf;
    d->max_pos = INT_MAX;
    return 0;
}

void decoder_reset(Decoder *d) {
    if (d->m->lstm) {
        memset(d->h, 0, (size_t)d->m->lstm->L * d->m->lstm->R * sizeof(float));
        memset(d->c, 0, (size_t)d->m->lstm->L * d->m->lstm->H * sizeof(float));
    }
}

void decoder_feed(Decoder *d, int token, int pos) {
    if (d->m->tf)
        transformer_forward_token(d->m->tf, &d->kv, token, pos);
    else
        lstm_forward_token(d->m->lstm, d->h, d->c, d->scratch, token, d->logits_buf);
}

void decoder_free(Decoder *d) {
    if (d->m && d->m->tf) kvcache_free(&d->kv);
    free(d->h);
    free(d->c);
    free(d->scratch);
    free(d->logits_buf);
    memset(d, 0, sizeof *d);
}
