/* ctxeval.c - held-out loss at another context (see ctxeval.h). */
#include "train/ctxeval.h"

#include "core/rng.h"
#include "kernels/ops.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CTXEVAL_ROWS = 4 }; /* windows per forward pass */

int ctxeval_check(const Config *cfg, int T, Status *st) {
    if (T < 1) return status_fail(st, AP_EINVAL, "evaluation context %d: need at least 1 token", T);
    if (T > cfg->context && cfg->family == FAMILY_TRANSFORMER && cfg->pos == POS_LEARNED)
        return status_fail(st, AP_EINVAL, "learned positions (pos=learned) have none beyond the training context %d: "
                           "nothing to evaluate at %d (RoPE, ALiBi, sinusoidal and no positions can be)",
                           cfg->context, T);
    return 0;
}

int ctxeval_scalings(const Config *cfg, int *out) {
    if (cfg->family == FAMILY_TRANSFORMER && (cfg->pos == POS_ROPE || cfg->attention == ATTN_MLA)) {
        for (int k = 0; k < 4; k++) out[k] = k; /* RopeScaleKind: none, linear, ntk, yarn */
        return 4;
    }
    out[0] = ROPE_SCALE_NONE;
    return 1;
}

/* Bucket of position t for training context C: 0 below C, then one per doubling. */
static int bucket_of(size_t t, size_t C) {
    int b = 0;
    for (size_t edge = C; t >= edge && b < CTXEVAL_BUCKETS - 1; edge *= 2) b++;
    return b;
}

static int set_key(Config *c, const char *key, const char *fmt, double v, Status *st) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return config_set(c, key, buf, st);
}

int ctxeval_run(const Config *cfg, const ParamSet *params, int T, int scaling, double factor, EvalPart part,
                long tokens, ContextEval *out, Status *st) {
    memset(out, 0, sizeof *out);
    if (ctxeval_check(cfg, T, st)) return -1;
    const size_t C = (size_t)cfg->context;
    /* a run fine-tuned with a scaling keeps it, counted from its own original context; else the
     * scaling asked for starts at the training context */
    int kind = scaling != ROPE_SCALE_NONE ? scaling : cfg->rope_scaling;
    double base = !cfg->rope_scaling                ? (double)C
                  : cfg->rope_original_context > 0 ? (double)cfg->rope_original_context
                                                    : (double)C / cfg->rope_factor;
    if (factor <= 0) factor = fmax((double)T / base, cfg->rope_scaling ? cfg->rope_factor : 1.0);
    out->train_context = cfg->context, out->context = T, out->scaling = kind, out->factor = kind ? factor : 1.0;
    Config e = *cfg; /* the trained recipe at context T: no parameter changes shape */
    e.eval_contexts[0] = '\0', e.teacher[0] = '\0';
    e.precision = PRECISION_FP32;
    const char *scale_name = config_enum_name("rope_scaling", kind);
    int rc = set_key(&e, "context", "%.0f", T, st);
    if (!rc && kind != ROPE_SCALE_NONE) {
        rc = config_set(&e, "rope_scaling", scale_name ? scale_name : "?", st);
        if (!rc) rc = set_key(&e, "rope_factor", "%.17g", factor, st);
        if (!rc) rc = set_key(&e, "rope_original_context", "%.0f", base, st);
    }
    if (!rc) rc = config_resolve(&e, st);
    Model *m = rc ? NULL : calloc(1, sizeof *m);
    if (!rc && !m) rc = status_fail(st, AP_ENOMEM, "out of memory");
    Rng rng;
    rng_seed(&rng, e.seed);
    if (!rc) rc = model_create(m, &e, &rng, st);
    if (!rc && m->ps->numel != params->numel)
        rc = status_fail(st, AP_EINVAL, "the model at context %d has %zu parameters, the trained one %zu", T,
                         m->ps->numel, params->numel);
    if (!rc) memcpy(m->ps->data, params->data, params->numel * sizeof *params->data);
    Dataset d = {0};
    if (!rc) rc = dataset_open(&d, cfg->data, cfg->tokenizer, cfg->val_frac, 0, T, cfg->seed, st);
    int B = CTXEVAL_ROWS, nb = 0;
    if (!rc) {
        nb = dataset_eval_batches(&d, part, 1, tokens);
        if (nb == 0) rc = status_fail(st, AP_EINVAL, "no held-out windows of %d tokens in '%s'", T, cfg->data);
        if (nb < B) B = nb;
        nb = rc ? 0 : dataset_eval_batches(&d, part, B, tokens);
    }
    if (!rc) rc = model_prepare(m, B, T, st);
    int *inputs = malloc((size_t)B * T * sizeof *inputs), *targets = malloc((size_t)B * T * sizeof *targets);
    if (!rc && (!inputs || !targets)) rc = status_fail(st, AP_ENOMEM, "out of memory");
    double nats[CTXEVAL_BUCKETS] = {0}, bytes[CTXEVAL_BUCKETS] = {0};
    const Tokenizer *tok = &d.tok;
    for (int k = 0; !rc && k < nb; k++) {
        uint64_t ignore = 0;
        dataset_eval_batch(&d, part, k, B, inputs, targets, &ignore, NULL);
        model_forward(m, inputs, targets, B, T, 0);
        const float *loss = model_losses(m);
        for (size_t i = 0; i < (size_t)B * T; i++) {
            int y = targets[i];
            if (y < 0) continue;
            int b = bucket_of(i % (size_t)T, C);
            nats[b] += loss[i], out->bucket_tokens[b] += 1;
            bytes[b] += tok->special && tok->special[y] ? 0 : (double)(tok->tok_off[y + 1] - tok->tok_off[y]);
        }
    }
    if (!rc) {
        double tn = 0, tb = 0, bn = 0, bb = 0;
        out->windows = nb * B;
        out->n_buckets = bucket_of((size_t)T - 1, C) + 1;
        for (int b = 0; b < out->n_buckets; b++) {
            out->bucket_bpb[b] = bytes[b] > 0 ? nats[b] / (log(2.0) * bytes[b]) : NAN;
            tn += nats[b], tb += bytes[b];
            if (b > 0) bn += nats[b], bb += bytes[b];
        }
        out->bpb = tb > 0 ? tn / (log(2.0) * tb) : NAN;
        out->bpb_beyond = bb > 0 ? bn / (log(2.0) * bb) : NAN;
    }
    free(inputs), free(targets);
    dataset_free(&d);
    if (m) model_free(m);
    free(m);
    return rc;
}
