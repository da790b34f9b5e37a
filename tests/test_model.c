/* test_model.c - whole-model checks on tiny configs, one per preset and per switch combination:
 * finite-difference gradients of every parameter tensor, the cached decoder against the batched
 * forward, exact FLOP counts, and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "gradcheck.h"
#include "models/model.h"

/* preset + overrides on top of a tiny shape */
typedef struct {
    const char *preset;
    const char *overrides[8];
} Variant;

static const char *TINY[] = {"vocab=11", "context=6", "d_model=8", "n_layers=2", "n_heads=2", "init_std=0.3", NULL};

static const Variant VARIANTS[] = {
    {"gpt2-2019", {NULL}},
    {"llama-2023", {NULL}},
    {"vaswani-2017", {NULL}},
    {"llama-2023", {"qk_norm=true", "softcap=3", "n_heads=4", "n_kv_heads=1", "window=4", NULL}}, /* MQA, window */
    {"gpt2-2019", {"act=relu2", "n_heads=4", "n_kv_heads=2", "tie_embeddings=false", "pos=alibi", NULL}}, /* GQA */
    {"llama-2023", {"act=geglu", "pos=none", "norm_position=post", NULL}},
    {"gpt2-2019", {"pos=sinusoidal", "bias=false", "emb_scale=true", "act=relu", NULL}},
    {"vaswani-2017", {"norm=rmsnorm", "pos=rope", "qk_norm=true", "act=gelu", NULL}},
    {"llama-2023", {"n_heads=4", "n_kv_heads=2", "parallel_block=true", NULL}},             /* GQA, parallel */
    {"speedrun-2025", {"n_heads=4", "n_kv_heads=2", "zero_init_proj=false", NULL}},         /* value embeddings */
    {"llama-2023", {"moe_experts=4", "moe_top_k=2", "moe_shared_experts=1", "moe_d_ff=8", NULL}}, /* MoE, aux */
    {"gpt2-2019", {"moe_experts=3", "moe_top_k=2", "moe_router=sigmoid", "moe_balance=bias", "moe_every=2", NULL}},
    {"llama-2023", {"mtp_depth=2", "mtp_weight=0.5", "z_loss=0.01", "optimizer=lion", NULL}}, /* MTP, z-loss */
    {"gpt2-2019", {"mtp_depth=1", "norm_position=post", "moe_experts=2", "moe_top_k=1", "moe_every=2", NULL}},
    {"llama-2023", {"attention=mla", "parallel_block=true", "window=3", NULL}},               /* MLA */
    {"llama-2023", {"attention=mla", "q_lora_rank=4", "kv_lora_rank=3", "norm_position=post", NULL}},
    {"speedrun-2025", {"unet_skips=true", "n_layers=5", "n_heads=4", "zero_init_proj=false", NULL}},                 /* U-net, odd depth */
    {"llama-2023", {"unet_skips=true", "n_layers=4", "mtp_depth=1", "window=3", NULL}},     /* U-net, MTP */
    {"llama-2023", {"mup_base_width=4", "tie_embeddings=false", "softcap=3", NULL}},        /* muP, r = 1/2 */
    {"gpt2-2019", {"mup_base_width=16", "attention=mla", "pos=rope", "moe_experts=2", "moe_top_k=1", "mtp_depth=1",
                   NULL}}, /* muP, r = 2, tied head */
};

/* extra (may be NULL) overrides the tiny shape, e.g. a longer context */
static void make_config(Config *c, const Variant *v, const char *extra) {
    Status st = {0};
    config_defaults(c);
    int rc = config_load_recipe(c, v->preset, &st);
    for (int i = 0; !rc && TINY[i]; i++) rc = config_apply_args(c, 1, (char **)&TINY[i], &st);
    for (int i = 0; !rc && v->overrides[i]; i++) rc = config_apply_args(c, 1, (char **)&v->overrides[i], &st);
    if (!rc && extra) rc = config_apply_args(c, 1, (char **)&extra, &st);
    if (!rc) rc = config_resolve(c, &st);
    if (rc) printf("config error: %s\n", st.msg);
    assert_int_equal(rc, 0);
}

typedef struct {
    Transformer *m;
    int *inputs, *targets;
    int B, T;
    int with_mtp; /* add the multi-token modules' loss (it reuses the logits buffer the backward reads) */
} ModelCtx;

static double model_loss(void *p) {
    ModelCtx *c = p;
    transformer_forward(c->m, c->inputs, c->targets, c->B, c->T);
    double s = 0;
    int n = 0;
    for (int i = 0; i < c->B * c->T; i++)
        if (c->targets[i] >= 0) s += c->m->a.losses[i], n++;
    double mtp = c->with_mtp ? transformer_mtp_loss(c->m) : 0.0;
    return s / n + c->m->aux_loss + c->m->zloss + mtp; /* the backward's loss: balance, z-loss and MTP terms */
}

static void test_gradients(void **state) {
    (void)state;
    int failures = 0;
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        Config cfg;
        make_config(&cfg, &VARIANTS[v], NULL);
        printf("variant %zu: %s", v, VARIANTS[v].preset);
        for (int i = 0; VARIANTS[v].overrides[i]; i++) printf(" %s", VARIANTS[v].overrides[i]);
        printf("\n");
        Transformer *m = calloc(1, sizeof *m);
        Rng rng;
        rng_seed(&rng, 7 + v);
        Status st = {0};
        assert_int_equal(transformer_create(m, &cfg, &rng, &st), 0);
        int B = 2, T = cfg.context;
        assert_int_equal(transformer_prepare(m, B, T, &st), 0);
        int inputs[12], targets[12];
        for (int i = 0; i < B * T; i++) {
            inputs[i] = (int)rng_below(&rng, (uint64_t)cfg.vocab);
            targets[i] = (int)rng_below(&rng, (uint64_t)cfg.vocab);
        }
        targets[5] = -1; /* an ignored position */
        ModelCtx ctx = {m, inputs, targets, B, T, 0};
        paramset_zero_grad(&m->ps);
        model_loss(&ctx);
        transformer_backward(m);
        ctx.with_mtp = 1;
        for (int i = 0; i < m->ps.n; i++) {
            const ParamTensor *t = &m->ps.t[i];
            if (t->group == PGROUP_STATE) continue; /* moved by a rule, not by its gradient */
            failures += gradcheck_tensor(t->name, m->ps.data + t->offset, m->ps.grad + t->offset, t->numel, model_loss,
                                         &ctx, (GradcheckOpts){1e-3, 5e-4, 3e-2, 24});
        }
        transformer_free(m);
        free(m);
    }
    assert_int_equal(failures, 0);
}

/* A mixture of one expert, top-1, is the dense MLP: softmax over one expert gives a gate of
 * exactly 1, so with the dense model's weights copied in, logits, loss and every gradient agree
 * (the router's gradient is zero). */
static void test_moe_one_expert_is_dense(void **state) {
    (void)state;
    const Variant dense = {"llama-2023", {NULL}}, moe = {"llama-2023", {"moe_experts=1", "moe_top_k=1", NULL}};
    Config cd, cm;
    make_config(&cd, &dense, NULL);
    make_config(&cm, &moe, NULL);
    Transformer *d = calloc(1, sizeof *d), *e = calloc(1, sizeof *e);
    Rng rng;
    Status st = {0};
    rng_seed(&rng, 5);
    assert_int_equal(transformer_create(d, &cd, &rng, &st), 0);
    assert_int_equal(transformer_create(e, &cm, &rng, &st), 0);
    for (int i = 0; i < e->ps.n; i++) {
        const ParamTensor *t = &e->ps.t[i];
        const char *from = !strcmp(t->name, "moe_w1") ? "wfc" : !strcmp(t->name, "moe_w2") ? "wproj" : t->name;
        const ParamTensor *src = paramset_find(&d->ps, from);
        if (!strcmp(t->name, "router")) continue;
        assert_non_null(src);
        assert_int_equal(src->numel, t->numel);
        memcpy(e->ps.data + t->offset, d->ps.data + src->offset, t->numel * sizeof(float));
    }
    int B = 2, T = cd.context, inputs[12], targets[12];
    for (int i = 0; i < B * T; i++) inputs[i] = (int)rng_below(&rng, 11), targets[i] = (int)rng_below(&rng, 11);
    assert_int_equal(transformer_prepare(d, B, T, &st), 0);
    assert_int_equal(transformer_prepare(e, B, T, &st), 0);
    paramset_zero_grad(&d->ps), paramset_zero_grad(&e->ps);
    float ld = transformer_forward(d, inputs, targets, B, T), le = transformer_forward(e, inputs, targets, B, T);
    printf("dense loss %.9g, one-expert MoE loss %.9g\n", ld, le);
    assert_float_equal(ld, le, 1e-6 * ld);
    transformer_backward(d), transformer_backward(e);
    for (int i = 0; i < e->ps.n; i++) {
        const ParamTensor *t = &e->ps.t[i];
        const float *ge = e->ps.grad + t->offset;
        if (!strcmp(t->name, "router")) {
            for (size_t j = 0; j < t->numel; j++) assert_float_equal(ge[j], 0, 1e-7);
            continue;
        }
        const char *from = !strcmp(t->name, "moe_w1") ? "wfc" : !strcmp(t->name, "moe_w2") ? "wproj" : t->name;
        const float *gd = d->ps.grad + paramset_find(&d->ps, from)->offset;
        double worst = 0, scale = 0;
        for (size_t j = 0; j < t->numel; j++) worst = fmax(worst, fabs(ge[j] - gd[j])), scale = fmax(scale, fabs(gd[j]));
        assert_true(worst <= 1e-5 * scale);
    }
    transformer_free(d), transformer_free(e);
    free(d), free(e);
}

static double tensor_std(const ParamSet *ps, const char *name) {
    const ParamTensor *t = paramset_find(ps, name);
    assert_non_null(t);
    double ss = 0;
    for (size_t j = 0; j < t->numel; j++) ss += (double)ps->data[t->offset + j] * ps->data[t->offset + j];
    return sqrt(ss / (double)t->numel);
}

/* muP: at its base width it is the standard model bit for bit; at 4x the width each role's
 * initialisation and learning-rate multiplier follow Table 3 (Adam) of Tensor Programs V. */
static void test_mup(void **state) {
    (void)state;
    const Variant sp = {"llama-2023", {"d_model=16", NULL}}, at_base = {"llama-2023", {"d_model=16", "mup_base_width=16", NULL}};
    Config c0, c1;
    make_config(&c0, &sp, NULL);
    make_config(&c1, &at_base, NULL);
    Transformer *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    Rng r0, r1;
    Status st = {0};
    rng_seed(&r0, 9), rng_seed(&r1, 9);
    assert_int_equal(transformer_create(a, &c0, &r0, &st), 0);
    assert_int_equal(transformer_create(b, &c1, &r1, &st), 0);
    assert_memory_equal(a->ps.data, b->ps.data, a->ps.numel * sizeof(float));
    int B = 2, T = c0.context, inputs[12], targets[12];
    for (int i = 0; i < B * T; i++) inputs[i] = (int)rng_below(&r0, 11), targets[i] = (int)rng_below(&r0, 11);
    assert_int_equal(transformer_prepare(a, B, T, &st), 0);
    assert_int_equal(transformer_prepare(b, B, T, &st), 0);
    float la = transformer_forward(a, inputs, targets, B, T), lb = transformer_forward(b, inputs, targets, B, T);
    assert_true(la == lb);
    transformer_free(a), transformer_free(b);

    /* 4x the base width: r = 1/4 */
    const Variant wide = {"llama-2023", {"d_model=64", "n_heads=4", "mup_base_width=16", "attention=mla",
                                         "moe_experts=4", "moe_top_k=2", "init_std=0.1", NULL}};
    Config cw;
    make_config(&cw, &wide, NULL);
    assert_int_equal(transformer_create(a, &cw, &r0, &st), 0);
    struct { const char *name; double std, lr; } roles[] = {
        {"wte", 0.1, 1},              /* input: as the base model */
        {"moe_w1", 0.1 * 0.5, 0.25},  /* hidden: std / sqrt(m), lr / m */
        {"mla_wq", 0.1 * 0.5, 0.25},
        {"router", 0.1 * 0.25, 0.25}, /* output-like: std / m, lr / m */
        {"mla_wdkv", 0.1 * 0.25, 0.25},
        {"mla_wukv", 0.1, 1},         /* input-like: out of the fixed-size latent */
    };
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) {
        double s = tensor_std(&a->ps, roles[i].name);
        printf("muP %-9s std %.4f (want %.4f), lr x %.3g\n", roles[i].name, s, roles[i].std,
               paramset_find(&a->ps, roles[i].name)->lr_mult);
        assert_true(fabs(s / roles[i].std - 1) < 0.15);
        assert_float_equal(paramset_find(&a->ps, roles[i].name)->lr_mult, roles[i].lr, 1e-7);
    }
    assert_float_equal(transformer_mup_ratio(&cw), 0.25, 1e-12);
    transformer_free(a);
    free(a), free(b);
}

/* Largest difference between decoded and batched logits at one position, relative to the
 * largest batched logit (single logits can be ~0). */
static double logits_rel_diff(const float *dec, const float *ref, int V) {
    double d = 0, norm = 0;
    for (int j = 0; j < V; j++) {
        d = fmax(d, fabs(dec[j] - ref[j]));
        norm = fmax(norm, fabs(ref[j]));
    }
    return d / norm;
}

/* The KV-cache decoder, fed the sequence token by token, must reproduce the batched forward's
 * logits at every position (a context of two attention blocks of 64 queries). */
static void test_cached_decoding(void **state) {
    (void)state;
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        Config cfg;
        make_config(&cfg, &VARIANTS[v], "context=70");
        Transformer *m = calloc(1, sizeof *m);
        Rng rng;
        rng_seed(&rng, 100 + v);
        Status st = {0};
        assert_int_equal(transformer_create(m, &cfg, &rng, &st), 0);
        int T = cfg.context, V = cfg.vocab;
        assert_int_equal(transformer_prepare(m, 1, T, &st), 0);
        int tokens[70];
        for (int t = 0; t < T; t++) tokens[t] = (int)rng_below(&rng, (uint64_t)V);
        transformer_forward(m, tokens, NULL, 1, T);
        KVCache kv;
        assert_int_equal(kvcache_create(&kv, m, &st), 0);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            transformer_forward_token(m, &kv, tokens[t], t);
            worst = fmax(worst, logits_rel_diff(kv.logits, m->a.probs + (size_t)t * V, V));
        }
        printf("variant %zu (%s", v, VARIANTS[v].preset);
        for (int i = 0; VARIANTS[v].overrides[i]; i++) printf(" %s", VARIANTS[v].overrides[i]);
        printf("): cached vs batched logits over %d positions, max rel diff %.2e\n", T, worst);
        assert_true(worst < 1e-5);
        kvcache_free(&kv);
        transformer_free(m);
        free(m);
    }
}

/* ---- LSTM: every parameter by finite differences, starting from a carried (non-zero) state ---- */
typedef struct {
    Model *m;
    int *inputs, *targets;
    int B, T;
    float *saved_h, *saved_c;
    size_t nh, nc;
} LstmCtx;

static double lstm_loss(void *p) {
    LstmCtx *c = p;
    memcpy(c->m->lstm->carry_h, c->saved_h, c->nh * sizeof(float));
    memcpy(c->m->lstm->carry_c, c->saved_c, c->nc * sizeof(float));
    model_forward(c->m, c->inputs, c->targets, c->B, c->T, 1);
    const float *l = model_losses(c->m);
    double s = 0;
    int n = 0;
    for (int i = 0; i < c->B * c->T; i++)
        if (c->targets[i] >= 0) s += l[i], n++;
    return s / n;
}

static void test_lstm_gradients(void **state) {
    (void)state;
    const char *variants[][4] = {
        {"tie_embeddings=true", "lstm_proj=false", NULL},
        {"tie_embeddings=false", "lstm_hidden=12", "softcap=3", NULL},
        {"tie_embeddings=true", "lstm_proj=true", "lstm_hidden=12", NULL},
    };
    int failures = 0;
    for (int v = 0; v < 3; v++) {
        Config cfg;
        Status st = {0};
        config_defaults(&cfg);
        const char *base[] = {"family=lstm", "vocab=11", "context=5", "d_model=8", "n_layers=2", "init_std=0.3"};
        assert_int_equal(config_apply_args(&cfg, 6, (char **)base, &st), 0);
        for (int i = 0; variants[v][i]; i++) assert_int_equal(config_apply_args(&cfg, 1, (char **)&variants[v][i], &st), 0);
        assert_int_equal(config_resolve(&cfg, &st), 0);
        printf("lstm variant %d: %s %s %s\n", v, variants[v][0], variants[v][1], variants[v][2] ? variants[v][2] : "");
        Model m;
        Rng rng;
        rng_seed(&rng, 40 + v);
        assert_int_equal(model_create(&m, &cfg, &rng, &st), 0);
        int B = 2, T = 5;
        assert_int_equal(model_prepare(&m, B, T, &st), 0);
        int inputs[10], targets[10];
        for (int i = 0; i < B * T; i++) {
            inputs[i] = (int)rng_below(&rng, 11);
            targets[i] = (int)rng_below(&rng, 11);
        }
        targets[3] = -1;
        /* a first chunk leaves a carried state; the checked chunk starts from it */
        model_forward(&m, inputs, targets, B, T, 1);
        LstmCtx ctx = {&m, inputs, targets, B, T, NULL, NULL, (size_t)m.lstm->L * B * m.lstm->R,
                       (size_t)m.lstm->L * B * m.lstm->H};
        ctx.saved_h = malloc(ctx.nh * sizeof(float));
        ctx.saved_c = malloc(ctx.nc * sizeof(float));
        memcpy(ctx.saved_h, m.lstm->carry_h, ctx.nh * sizeof(float));
        memcpy(ctx.saved_c, m.lstm->carry_c, ctx.nc * sizeof(float));
        double h_abs = 0;
        for (size_t i = 0; i < ctx.nh; i++) h_abs += fabs(ctx.saved_h[i]);
        assert_true(h_abs > 0.1); /* the state really is carried */
        paramset_zero_grad(m.ps);
        lstm_loss(&ctx);
        model_backward(&m);
        for (int i = 0; i < m.ps->n; i++) {
            const ParamTensor *t = &m.ps->t[i];
            failures += gradcheck_tensor(t->name, m.ps->data + t->offset, m.ps->grad + t->offset, t->numel, lstm_loss,
                                         &ctx, (GradcheckOpts){1e-3, 5e-4, 3e-2, 24});
        }
        /* decoding token by token reproduces the batched forward (from a zero state), every row */
        model_forward(&m, inputs, NULL, B, T, 0);
        Decoder dec;
        assert_int_equal(decoder_create(&dec, &m, &st), 0);
        double worst = 0;
        for (int b = 0; b < B; b++) {
            decoder_reset(&dec);
            for (int t = 0; t < T; t++) {
                decoder_feed(&dec, inputs[b * T + t], t);
                worst = fmax(worst, logits_rel_diff(dec.logits, model_logits(&m) + (size_t)(b * T + t) * 11, 11));
            }
        }
        printf("  decoder vs batched logits: max rel diff %.2e\n", worst);
        assert_true(worst < 1e-5);
        decoder_free(&dec);
        free(ctx.saved_h);
        free(ctx.saved_c);
        model_free(&m);
    }
    assert_int_equal(failures, 0);
}

/* FLOPs are counted from shapes; check one case by hand. */
static void test_flops(void **state) {
    (void)state;
    Config c;
    config_defaults(&c);
    const char *a[] = {"vocab=100", "context=4", "d_model=8", "n_layers=1", "n_heads=2", "d_ff=32", "act=gelu"};
    Status st;
    assert_int_equal(config_apply_args(&c, 7, (char **)a, &st), 0);
    assert_int_equal(config_resolve(&c, &st), 0);
    StepFlops f = transformer_step_flops(&c, 3, 4);
    /* N=12 tokens: qkv 12*8*24, wo 12*8*8, fc 12*8*32, proj 12*32*8 MACs; attention per (b,h):
     * hd=4 * (1+2+3+4)=10 * 2 products, 3*2 (b,h) pairs; head 12*8*100 */
    double macs = 12.0 * 8 * 24 + 12.0 * 8 * 8 + 12.0 * 8 * 32 + 12.0 * 32 * 8 + 6 * 4 * 10 * 2 + 12.0 * 8 * 100;
    assert_float_equal(f.forward, 2 * macs, 1e-6);
    assert_float_equal(f.backward, 4 * macs, 1e-6);
    /* a window of 2 keys: the 4 queries see 1 + 2 + 2 + 2 = 7 keys instead of 10 */
    const char *w2[] = {"window=2"};
    assert_int_equal(config_apply_args(&c, 1, (char **)w2, &st), 0);
    assert_float_equal(transformer_step_flops(&c, 3, 4).forward, 2 * (macs - 6 * 4 * 3 * 2), 1e-6);
    c.window = 0;
    /* MLA (hd 4 = dn 2 + dr 2, latent 4): q 8*8, latent 8*4, up 4*(2*(2+4)), RoPE key 8*2, wo 8*8; and a
     * mixture of 4 experts of width 16, 2 routed + 1 shared: router 8*4, 3 experts of 8*16 + 16*8 */
    const char *b[] = {"attention=mla", "pos=rope", "kv_lora_rank=4", "rope_head_dim=2", "moe_experts=4", "moe_top_k=2",
                       "moe_shared_experts=1", "moe_d_ff=16"};
    assert_int_equal(config_apply_args(&c, 8, (char **)b, &st), 0);
    assert_int_equal(config_resolve(&c, &st), 0);
    f = transformer_step_flops(&c, 3, 4);
    macs = 12.0 * (8 * 8 + 8 * 4 + 4 * 12 + 8 * 2 + 8 * 8) + 12.0 * (8 * 4 + 3 * (8 * 16 + 16 * 8)) + 6 * 4 * 10 * 2 +
           12.0 * 8 * 100;
    assert_float_equal(f.forward, 2 * macs, 1e-6);
}

int main(void) {
    parallel_init(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_cached_decoding),
        cmocka_unit_test(test_moe_one_expert_is_dense),
        cmocka_unit_test(test_mup),
        cmocka_unit_test(test_flops),
        cmocka_unit_test(test_lstm_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
