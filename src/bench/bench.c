/* bench.c - throughput measurements (see bench.h). */
#include "bench/bench.h"

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/attention_tiles.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "models/model.h"
#include "optim/optim.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REPEATS 7
#define MIN_REPEAT_S 0.1

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Calls fn until at least MIN_REPEAT_S has passed, REPEATS times after two warm-up calls;
 * returns work/second for each repeat's mean call time (best and median). */
static BenchRate time_rate(void (*fn)(void *), void *ctx, double work) {
    double rates[REPEATS];
    fn(ctx), fn(ctx);
    for (int r = 0; r < REPEATS; r++) {
        int calls = 0;
        double t0 = time_now(), dt;
        do {
            fn(ctx);
            calls++;
        } while ((dt = time_now() - t0) < MIN_REPEAT_S);
        rates[r] = work * calls / dt;
    }
    BenchRate out = {0, median(rates, REPEATS)};
    for (int r = 0; r < REPEATS; r++) out.best = rates[r] > out.best ? rates[r] : out.best;
    return out;
}

/* ---- peak: 12 independent chains of FMAs per thread on the widest vectors the CPU has, enough to
 * cover the FMA latency times the number of FMA pipes on current x86 cores, so the loop is
 * throughput-bound. Each width is compiled for its own target, so a build without -march=native
 * still measures AVX-512 on a CPU that has it. */
#define FMA_ITERS 2000000
#define FMA_CHAINS 12

/* acc = acc * mul + add on `lanes`-wide vectors; -ffp-contract=fast makes each one FMA */
#define FMA_BODY(vec, lanes)                                                                                  \
    vec acc[FMA_CHAINS];                                                                                      \
    vec mul, add;                                                                                             \
    for (int l = 0; l < (lanes); l++) mul[l] = 0.999999f, add[l] = 1e-6f * (float)(l + 1);                    \
    for (int c = 0; c < FMA_CHAINS; c++)                                                                      \
        for (int l = 0; l < (lanes); l++) acc[c][l] = (float)(c + l + seed);                                  \
    for (long i = 0; i < FMA_ITERS; i++)                                                                      \
        for (int c = 0; c < FMA_CHAINS; c++) acc[c] = acc[c] * mul + add;                                     \
    float s = 0.0f;                                                                                           \
    for (int c = 0; c < FMA_CHAINS; c++)                                                                      \
        for (int l = 0; l < (lanes); l++) s += acc[c][l];                                                     \
    return s

typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

__attribute__((target("avx512f"))) static float fma_chains_avx512(int seed) { FMA_BODY(v16f, 16); }
__attribute__((target("avx2,fma"))) static float fma_chains_avx2(int seed) { FMA_BODY(v8f, 8); }
static float fma_chains_generic(int seed) { FMA_BODY(v4f, 4); }

typedef enum { FMA_AVX512, FMA_AVX2, FMA_GENERIC } FmaWidth;

static FmaWidth fma_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return FMA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FMA_AVX2;
    return FMA_GENERIC;
}

const char *bench_fma_isa(void) {
    static const char *const names[] = {"AVX-512, 16-wide", "AVX2, 8-wide", "SSE, 4-wide, no FMA"};
    return names[fma_width()];
}

static void fma_loop(void *ctx) {
    float *sink = ctx;
    FmaWidth w = fma_width();
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        float s = w == FMA_AVX512 ? fma_chains_avx512(t) : w == FMA_AVX2 ? fma_chains_avx2(t) : fma_chains_generic(t);
#pragma omp atomic
        *sink += s;
    }
}

BenchRate bench_fma_peak(void) {
    float sink = 0.0f;
    static const int lanes[] = {16, 8, 4};
    double flops = (double)parallel_threads() * FMA_ITERS * FMA_CHAINS * lanes[fma_width()] * 2;
    BenchRate r = time_rate(fma_loop, &sink, flops * 1e-9);
    if (sink == 12345.0f) r.best += 0; /* keeps the result alive */
    return r;
}

/* ---- sgemm */
typedef struct {
    int M, N, K, ta, tb, inner;
    GemmLib lib;
    GemmPrecision prec;
    float *A, *B, *C; /* one set per thread when inner */
} GemmCtx;

static void gemm_one(const GemmCtx *g, int t) {
    size_t M = (size_t)g->M, N = (size_t)g->N, K = (size_t)g->K;
    if (g->prec == GEMM_BF16) {
        gemm_bf16_sgemm(g->ta, g->tb, M, N, K, 1.0f, g->A + t * M * K, g->ta ? M : K, g->B + t * K * N, g->tb ? K : N,
                        0.0f, g->C + t * M * N, N);
        return;
    }
    gemm_sgemm_on(g->lib, g->ta, g->tb, M, N, K, 1.0f, g->A + t * M * K, g->ta ? M : K, g->B + t * K * N,
                  g->tb ? K : N, 0.0f, g->C + t * M * N, N);
}

static void gemm_call(void *p) {
    GemmCtx *g = p;
    if (!g->inner) {
        gemm_one(g, 0);
        return;
    }
#pragma omp parallel
    gemm_one(g, omp_get_thread_num());
}

static float *filled(size_t n, uint64_t seed) {
    float *v = malloc((n ? n : 1) * sizeof(float));
    if (!v) return NULL;
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform(&r) - 0.5f;
    return v;
}

BenchRate bench_sgemm(GemmLib lib, GemmPrecision prec, int M, int N, int K, int transA, int transB, int inner) {
    size_t sets = inner ? (size_t)parallel_threads() : 1;
    GemmCtx g = {M, N, K, transA, transB, inner, lib, prec, NULL, NULL, NULL};
    g.A = filled(sets * M * K, 1), g.B = filled(sets * K * N, 2), g.C = filled(sets * M * N, 3);
    BenchRate r = {0, 0};
    if (g.A && g.B && g.C) r = time_rate(gemm_call, &g, (double)sets * 2.0 * M * N * K * 1e-9);
    free(g.A), free(g.B), free(g.C);
    return r;
}

/* ---- kernels */
typedef struct {
    int B, T, C, H, F, V;
    float *x, *y, *dy, *dx, *w, *dw, *db, *mean, *rstd, *att, *scratch, *probs;
    int *targets;
    int which, backward;
} KernelCtx;

/* attention at the shape's head width and at 16 (the default study's), on the register tiles where
 * they run (attention_tiles.h) and on the GEMM path, and the plain reference */
enum { K_ATTN, K_ATTN_GEMM, K_ATTN16, K_ATTN16_GEMM, K_ATTN_REF, K_LAYERNORM, K_RMSNORM, K_GELU, K_SWIGLU, K_XENT,
       K_COUNT };
static const char *KERNEL_NAMES[K_COUNT] = {
    "attention",           "attention (GEMMs)", "attention hd16", "attention hd16 (GEMMs)", "attention (reference)",
    "layernorm",           "rmsnorm",           "gelu (4C)",      "swiglu (F)",             "softmax + cross-entropy"};

static void attention_call(KernelCtx *k, size_t hd, int gemms) {
    size_t B = (size_t)k->B, T = (size_t)k->T, H = (size_t)k->C / hd;
    att_tiles_disable(gemms);
    if (k->backward)
        attention_backward(k->dx, k->scratch, k->dy, k->x, k->y, k->att, B, T, H, H, hd, 0, NULL);
    else
        attention_forward(k->y, k->att, k->scratch, k->x, B, T, H, H, hd, 0, NULL);
    att_tiles_disable(0);
}

static void kernel_call(void *p) {
    KernelCtx *k = p;
    size_t B = (size_t)k->B, T = (size_t)k->T, N = B * T, C = (size_t)k->C, H = (size_t)k->H, hd = C / H;
    size_t F = (size_t)k->F, V = (size_t)k->V;
    switch (k->which * 2 + k->backward) {
    case K_ATTN * 2:
    case K_ATTN * 2 + 1: attention_call(k, hd, 0); break;
    case K_ATTN_GEMM * 2:
    case K_ATTN_GEMM * 2 + 1: attention_call(k, hd, 1); break;
    case K_ATTN16 * 2:
    case K_ATTN16 * 2 + 1: attention_call(k, 16, 0); break;
    case K_ATTN16_GEMM * 2:
    case K_ATTN16_GEMM * 2 + 1: attention_call(k, 16, 1); break;
    case K_ATTN_REF * 2: attention_forward_ref(k->y, k->att, k->scratch, k->x, B, T, H, H, hd, 0, NULL); break;
    case K_ATTN_REF * 2 + 1: attention_backward_ref(k->dx, k->scratch, k->dy, k->x, k->att, B, T, H, H, hd); break;
    case K_LAYERNORM * 2: layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->w, N, C, 1e-5f); break;
    case K_LAYERNORM * 2 + 1:
        layernorm_backward(k->dx, k->dw, k->db, k->dy, k->x, k->w, k->mean, k->rstd, N, C);
        break;
    case K_RMSNORM * 2: rmsnorm_forward(k->y, k->rstd, k->x, k->w, N, C, 1e-5f); break;
    case K_RMSNORM * 2 + 1: rmsnorm_backward(k->dx, k->dw, k->dy, k->x, k->w, k->rstd, N, C); break;
    case K_GELU * 2: gelu_forward(k->y, k->x, N * 4 * C); break;
    case K_GELU * 2 + 1: gelu_backward(k->dx, GRAD_ADD, k->dy, k->x, N * 4 * C); break;
    case K_SWIGLU * 2: swiglu_forward(k->y, k->x, N, F); break;
    case K_SWIGLU * 2 + 1: swiglu_backward(k->dx, GRAD_ADD, k->dy, k->x, N, F); break;
    case K_XENT * 2: crossentropy_softmax_forward(k->mean, k->probs, k->x, k->targets, N, V); break;
    case K_XENT * 2 + 1: crossentropy_softmax_backward(k->dx, k->probs, k->targets, 1.0f / (float)N, N, V); break;
    default: abort();
    }
}

int bench_kernels(BenchKernel *out, int max, int B, int T, int C, int H, int F, int V) {
    size_t N = (size_t)B * T, hd = (size_t)(C / H);
    size_t big = N * (size_t)(3 * C > 4 * C ? 3 * C : 4 * C);
    if (big < N * 2 * (size_t)F) big = N * 2 * (size_t)F;
    if (big < N * (size_t)V) big = N * (size_t)V;
    KernelCtx k;
    memset(&k, 0, sizeof k);
    k.B = B, k.T = T, k.C = C, k.H = H, k.F = F, k.V = V;
    k.x = filled(big, 11), k.y = filled(big, 12), k.dy = filled(big, 13), k.dx = filled(big, 14);
    k.w = filled((size_t)C, 15), k.dw = filled((size_t)C, 16), k.db = filled((size_t)C, 17);
    k.mean = filled(N, 18), k.rstd = filled(N, 19), k.probs = filled(N * (size_t)V, 20);
    size_t heads = (size_t)H > (size_t)C / 16 ? (size_t)H : (size_t)C / 16; /* the hd16 rows have more */
    k.att = filled((size_t)B * heads * T * T, 21);
    size_t scratch_hd = hd > 16 ? hd : 16;
    k.scratch = filled((size_t)parallel_threads() * attention_scratch_floats((size_t)T, scratch_hd), 22);
    k.targets = malloc(N * sizeof(int));
    int n = 0;
    if (k.x && k.y && k.dy && k.dx && k.w && k.dw && k.db && k.mean && k.rstd && k.probs && k.att && k.scratch &&
        k.targets) {
        for (size_t i = 0; i < N; i++) k.targets[i] = (int)(i * 7919 % (size_t)V);
        for (int which = 0; which < K_COUNT && n < max; which++) {
            BenchKernel *r = &out[n++];
            snprintf(r->name, sizeof r->name, "%s", KERNEL_NAMES[which]);
            k.which = which;
            kernel_call((k.backward = 0, &k)); /* the backward reads what the forward saved */
            k.backward = 1;
            r->bwd_ms = 1e3 / time_rate(kernel_call, &k, 1.0).median;
            k.backward = 0;
            r->fwd_ms = 1e3 / time_rate(kernel_call, &k, 1.0).median;
        }
    }
    free(k.x), free(k.y), free(k.dy), free(k.dx), free(k.w), free(k.dw), free(k.db), free(k.mean), free(k.rstd);
    free(k.probs), free(k.att), free(k.scratch), free(k.targets);
    return n;
}

/* ---- training and generation */
static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int bench_generate(const Model *m, int tokens, double *tokens_per_s, Status *st) {
    Decoder dec;
    if (decoder_create(&dec, m, st)) return -1;
    int V = m->cfg.vocab, n = tokens < dec.max_pos ? tokens : dec.max_pos - 1;
    double times[5];
    for (int r = -2; r < 5; r++) { /* 2 warm-up runs */
        double t0 = time_now();
        decoder_reset(&dec);
        decoder_feed(&dec, 0, 0);
        for (int i = 1; i <= n; i++) decoder_feed(&dec, argmax(dec.logits, V), i);
        if (r >= 0) times[r] = time_now() - t0;
    }
    *tokens_per_s = n / median(times, 5);
    decoder_free(&dec);
    return 0;
}

int bench_train(const Config *cfg_in, int steps, int warmup, int gen_tokens, BenchTrain *out, Status *st) {
    Config cfg = *cfg_in;
    memset(out, 0, sizeof *out);
    if (steps < 1) return status_fail(st, AP_EINVAL, "bench needs at least one timed step");
    int B = cfg.batch, T = cfg.context;
    size_t N = (size_t)B * T;
    Rng rng;
    rng_seed(&rng, cfg.seed);
    Model model = {0};
    Optimizer opt = {0};
    int *inputs = malloc(N * sizeof(int)), *targets = malloc(N * sizeof(int));
    double *times = malloc((size_t)steps * sizeof(double));
    int rc = (!inputs || !targets || !times) ? status_fail(st, AP_ENOMEM, "out of memory") : 0;
    if (!rc) rc = model_create(&model, &cfg, &rng, st);
    if (!rc) rc = optim_create(&opt, &cfg, model.ps, st);
    if (!rc) rc = model_prepare(&model, B, T, st);
    if (!rc) {
        for (size_t i = 0; i < N; i++) inputs[i] = (int)rng_below(&rng, (uint64_t)cfg.vocab);
        for (size_t i = 0; i < N; i++) targets[i] = (int)rng_below(&rng, (uint64_t)cfg.vocab);
        for (int s = -warmup; s < steps && !rc; s++) {
            double t0 = time_now();
            float loss = model_forward(&model, inputs, targets, B, T, 0);
            paramset_zero_grad(model.ps);
            model_backward(&model);
            optim_clip(model.ps, cfg.grad_clip);
            optim_step(&opt, cfg.lr);
            if (!isfinite(loss)) rc = status_fail(st, AP_ENUMERIC, "loss is %f in the benchmark", loss);
            if (s >= 0) times[s] = time_now() - t0;
        }
    }
    if (!rc) {
        double best = times[0];
        for (int s = 1; s < steps; s++) best = times[s] < best ? times[s] : best;
        out->step_s_median = median(times, steps);
        out->step_s_best = best;
        out->tokens_per_s = (double)N / out->step_s_median;
        out->tokens_per_s_best = (double)N / best;
        StepFlops f = model_step_flops(&cfg, B, T);
        out->flops_per_token = (f.forward + f.backward + optim_step_flops(&cfg, model.ps)) / (double)N;
        size_t total, nonemb;
        model_count_params(&cfg, &total, &nonemb);
        out->params = (double)total;
        out->nonemb_params = (double)nonemb;
        /* the head matmul counts whether tied or not; an untied head is already in nonemb */
        double head = cfg.tie_embeddings ? (double)cfg.vocab * cfg.d_model : 0.0;
        double attn = cfg.family == FAMILY_TRANSFORMER ? 12.0 * cfg.n_layers * cfg.d_model * T : 0.0;
        out->flops_per_token_palm = 6.0 * ((double)nonemb + head) + attn;
        if (gen_tokens > 0) rc = bench_generate(&model, gen_tokens, &out->gen_tokens_per_s, st);
    }
    free(inputs), free(targets), free(times);
    optim_free(&opt);
    model_free(&model);
    return rc;
}
