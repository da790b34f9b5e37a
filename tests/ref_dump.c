/* ref_dump.c - writes what the PyTorch reference test compares against.
 *
 * usage: ref_dump OUT.bin RECIPE [key=value ...]
 * Builds the model from the recipe (seeded init), draws one batch, and dumps: the initial
 * parameters (p.*), the batch, the logits, the loss, every parameter gradient (g.*), then runs
 * `steps` optimiser steps on that batch (clipping and schedule as in training) and dumps the
 * per-step loss, grad norm and lr, the final parameters (q.*) and, in the text's [meta], the
 * model's N (params_nonembedding). tests/ref_torch.py rebuilds the model in PyTorch from the
 * same file and compares everything. */
#include "core/parallel.h"
#include "core/tensorfile.h"
#include "optim/optim.h"
#include "kernels/ops.h"
#include "models/model.h"
#include "models/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_params(TensorList *l, const char *prefix, const ParamSet *ps, const float *base) {
    for (int i = 0; i < ps->n; i++) {
        const ParamTensor *t = &ps->t[i];
        uint64_t shape[4];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        char name[TF_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        tensorlist_add(l, name, TF_F32, base + t->offset, t->ndim, shape);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ref_dump OUT.bin RECIPE [key=value ...]\n");
        return 2;
    }
    parallel_init(0);
    Status st = {0};
    Config cfg;
    config_defaults(&cfg);
    if (config_load_recipe(&cfg, argv[2], &st) || config_apply_args(&cfg, argc - 3, argv + 3, &st) ||
        config_resolve(&cfg, &st)) {
        fprintf(stderr, "ref_dump: %s\n", st.msg);
        return 2;
    }
    if (cfg.vocab == 0) cfg.vocab = 256;
    Model *m = calloc(1, sizeof *m);
    Rng rng;
    rng_seed(&rng, cfg.seed);
    Optimizer opt;
    int B = cfg.batch, T = cfg.context, V = cfg.vocab, steps = cfg.steps;
    if (model_create(m, &cfg, &rng, &st) || model_prepare(m, B, T, &st) || optim_create(&opt, &cfg, m->ps, &st)) {
        fprintf(stderr, "ref_dump: %s\n", st.msg);
        return 1;
    }
    size_t N = (size_t)B * T, P = m->ps->numel;
    int stateful = model_is_stateful(&cfg);
    int *inputs = malloc(N * sizeof(int)), *targets = malloc(N * sizeof(int));
    for (size_t i = 0; i < N; i++) {
        inputs[i] = (int)rng_below(&rng, (uint64_t)V);
        targets[i] = (int)rng_below(&rng, (uint64_t)V);
    }
    targets[N / 2] = -1; /* one ignored position */
    float *p0 = malloc(P * sizeof(float)), *g0 = malloc(P * sizeof(float)), *logits = malloc(N * V * sizeof(float));
    memcpy(p0, m->ps->data, P * sizeof(float));
    model_forward(m, inputs, NULL, B, T, 0);
    memcpy(logits, model_logits(m), N * V * sizeof(float));
    paramset_zero_grad(m->ps);
    /* teacher = anything: distillation against fixed random soft targets (the teacher's tempered
     * softmax of random logits), which every backward consumes, so each gets a fresh copy */
    float *soft = NULL, *soft_work = NULL;
    if (cfg.teacher[0] && m->tf) {
        soft = malloc(N * V * sizeof(float)), soft_work = malloc(N * V * sizeof(float));
        float *tl = malloc(N * V * sizeof(float)), *tloss = malloc(N * sizeof(float));
        for (size_t i = 0; i < N * V; i++) tl[i] = 2.0f * rng_normal(&rng);
        crossentropy_softmax_forward(tloss, tl, tl, targets, N, (size_t)V);
        distill_targets(soft, tl, N, (size_t)V, (float)cfg.distill_temperature);
        free(tl), free(tloss);
    }
#define DISTILL()                                                                                                  \
    if (soft) {                                                                                                    \
        memcpy(soft_work, soft, N * V * sizeof(float));                                                            \
        transformer_set_distill(m->tf, soft_work, (float)cfg.distill_weight, (float)cfg.distill_temperature);      \
    }
    float loss = model_forward(m, inputs, targets, B, T, 0);
    DISTILL();
    model_backward(m);
    memcpy(g0, m->ps->grad, P * sizeof(float));
    float *losses = calloc(steps + 1, sizeof(float)), *norms = calloc(steps + 1, sizeof(float)),
          *lrs = calloc(steps + 1, sizeof(float));
    for (int s = 0; s < steps; s++) {
        paramset_zero_grad(m->ps);
        /* a stateful LSTM carries its state from one step to the next, as in training */
        losses[s] = model_forward(m, inputs, targets, B, T, stateful);
        DISTILL();
        model_backward(m);
        norms[s] = (float)optim_clip(m->ps, cfg.grad_clip);
        lrs[s] = (float)schedule_lr(&cfg, s);
        optim_step(&opt, schedule_lr(&cfg, s));
        model_end_step(m);
        optim_ema_update(&opt);
    }
    float *xw = NULL; /* the weights evaluations use, where they are not the trained ones (x.NAME) */
    if (opt.eval_swap && (xw = malloc(P * sizeof(float)))) {
        optim_eval_weights_in(&opt);
        memcpy(xw, m->ps->data, P * sizeof(float));
        optim_eval_weights_out(&opt);
    }
    char *conf = config_to_text(&cfg, 0);
    char *text = malloc(strlen(conf) + 128);
    /* N as the trainer counts it, for the reference's check of the definition in docs/RECIPES.md */
    sprintf(text, "[meta]\nkind = ref\nparams_nonembedding = %zu\n[config]\n%s", model_nonembedding_params(m), conf);
    TensorList l = {0};
    uint64_t bt[2] = {(uint64_t)B, (uint64_t)T}, btv[3] = {(uint64_t)B, (uint64_t)T, (uint64_t)V}, one = 1,
             ns = (uint64_t)(steps ? steps : 1);
    add_params(&l, "p.", m->ps, p0);
    add_params(&l, "g.", m->ps, g0);
    add_params(&l, "q.", m->ps, m->ps->data);
    if (xw) add_params(&l, "x.", m->ps, xw);
    if (soft) tensorlist_add(&l, "distill_q", TF_F32, soft, 3, btv);
    tensorlist_add(&l, "inputs", TF_I32, inputs, 2, bt);
    tensorlist_add(&l, "targets", TF_I32, targets, 2, bt);
    tensorlist_add(&l, "logits", TF_F32, logits, 3, btv);
    tensorlist_add(&l, "loss", TF_F32, &loss, 1, &one);
    tensorlist_add(&l, "step_losses", TF_F32, losses, 1, &ns);
    tensorlist_add(&l, "step_grad_norms", TF_F32, norms, 1, &ns);
    tensorlist_add(&l, "step_lrs", TF_F32, lrs, 1, &ns);
    int rc = tensorfile_write(argv[1], TF_KIND_DUMP, text, &l, &st);
    free(soft), free(soft_work);
    if (rc) fprintf(stderr, "ref_dump: %s\n", st.msg);
    tensorlist_free(&l);
    free(text), free(conf), free(p0), free(g0), free(logits), free(inputs), free(targets), free(losses), free(norms),
        free(lrs), free(xw);
    optim_free(&opt);
    model_free(m);
    free(m);
    return rc ? 1 : 0;
}
