/* bench.h - throughput measurements behind `algoprog bench`.
 *
 * Every function measures in the calling process with the thread count already set by
 * parallel_init; the CLI runs each measurement in a child process so that thread settings and
 * peak memory are per measurement. Nothing here asserts a speed: benchmarks report, tests do not
 * time (README, "Performance is a feature").
 *
 * Rates are GFLOP/s with 2 FLOPs per multiply-add. Times are best and median over repeats: the
 * best shows what the code can do, the median what a run will see on a noisy shared machine. */
#ifndef AP_BENCH_H
#define AP_BENCH_H

#include "core/status.h"
#include "config/config.h"
#include "kernels/gemm.h"

typedef struct {
    double best, median;
} BenchRate;

/* Register-resident fused multiply-add loop on every thread, on the widest vectors the CPU has
 * (runtime detection): the machine's fp32 peak. */
BenchRate bench_fma_peak(void);
/* Which vectors bench_fma_peak uses, e.g. "AVX-512, 16-wide". */
const char *bench_fma_isa(void);

/* Row-major C[M,N] = op(A) op(B) on one GEMM library (gemm.h), op = transpose when trans is set;
 * with prec = GEMM_BF16, gemm_bf16_sgemm whatever the shape (lib is then ignored; the caller
 * checks gemm_bf16_available). inner: every thread runs its own product at once inside one
 * parallel region, as attention does per head (the rate counts all of them). */
BenchRate bench_sgemm(GemmLib lib, GemmPrecision prec, int M, int N, int K, int transA, int transB, int inner);

/* One kernel pair at one shape: milliseconds per call. */
typedef struct {
    char name[48];
    double fwd_ms, bwd_ms; /* medians */
} BenchKernel;

/* The kernels of a transformer block at a training shape (B, T, C, H, hd = C/H, F hidden units,
 * V vocab): attention (fast and the plain reference), norms, activations, cross-entropy.
 * Fills up to max entries, returns how many. */
int bench_kernels(BenchKernel *out, int max, int B, int T, int C, int H, int F, int V);

/* One training configuration. */
typedef struct {
    double tokens_per_s, tokens_per_s_best; /* B*T / median step, / fastest step */
    double step_s_median, step_s_best;
    double flops_per_token;                 /* as executed and counted by the model (causal attention) */
    double flops_per_token_palm;            /* 6 (N_nonemb + V d) + 12 L d T, the anchors' formula */
    double params, nonemb_params;
    double gen_tokens_per_s;                /* batch-1 greedy decoding, 0 if not measured */
} BenchTrain;

/* `steps` timed optimiser steps (after `warmup`) on one fixed batch of random tokens: forward,
 * cross-entropy, zero grad, backward, clip, optimiser step - the trainer's step minus data
 * loading. With gen_tokens > 0, also times greedy decoding of that many tokens (batch 1). */
int bench_train(const Config *cfg, int steps, int warmup, int gen_tokens, BenchTrain *out, Status *st);

#endif
