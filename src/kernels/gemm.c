/* gemm.c - every fp32 matrix product of the library, on oneDNN or OpenBLAS (see gemm.h). */
#include "kernels/gemm.h"

#include "core/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if ALGOPROG_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

static GemmLib current = GEMM_AUTO;
static GemmPrecision precision = GEMM_FP32;

int gemm_have_onednn(void) { return ALGOPROG_ONEDNN; }

int gemm_use(GemmLib lib, Status *st) {
    if (lib != GEMM_AUTO && lib != GEMM_ONEDNN && lib != GEMM_OPENBLAS)
        return status_fail(st, AP_EINVAL, "unknown GEMM library %d", (int)lib);
    if (lib == GEMM_ONEDNN && !ALGOPROG_ONEDNN)
        return status_fail(st, AP_EINVAL,
                           "gemm=onednn, but this build has no oneDNN (install libdnnl-dev and reconfigure, or "
                           "use gemm=auto or gemm=openblas)");
    current = lib;
    return 0;
}

GemmLib gemm_current(void) { return current; }

const char *gemm_lib_name(GemmLib lib) {
    switch (lib) {
    case GEMM_AUTO: return "auto";
    case GEMM_ONEDNN: return "onednn";
    case GEMM_OPENBLAS: return "openblas";
    }
    return "?";
}

#if ALGOPROG_ONEDNN
static const char *onednn_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
    }
}
#endif

void gemm_describe(char *buf, size_t size) {
    char blas[64];
    snprintf(blas, sizeof blas, "%s", openblas_get_config());
    /* "OpenBLAS 0.3.21 NO_LAPACKE ...": keep the name and version */
    char *sp = strchr(blas, ' ');
    if (sp && (sp = strchr(sp + 1, ' '))) *sp = '\0';
#if ALGOPROG_ONEDNN
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, size, "oneDNN %d.%d.%d (%s) + %s (%s)", v->major, v->minor, v->patch, onednn_isa_name(), blas,
             openblas_get_corename());
#else
    snprintf(buf, size, "%s (%s)", blas, openblas_get_corename());
#endif
}

/* The rule measured on training and study shapes (docs/BENCH.md): oneDNN was faster on every
 * shape with at least GEMM_AUTO_MIN_WORK multiply-adds; below, per-call overheads decide. */
#define GEMM_AUTO_MIN_WORK 0.0

GemmLib gemm_auto_pick(size_t M, size_t N, size_t K, int in_parallel) {
    (void)in_parallel;
    if (!ALGOPROG_ONEDNN) return GEMM_OPENBLAS;
    return (double)M * (double)N * (double)K >= GEMM_AUTO_MIN_WORK ? GEMM_ONEDNN : GEMM_OPENBLAS;
}

static void openblas_sgemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                           const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void gemm_sgemm_on(GemmLib lib, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                   size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (lib == GEMM_AUTO) lib = gemm_auto_pick(M, N, K, omp_in_parallel());
#if ALGOPROG_ONEDNN
    /* K = 0 only scales C: OpenBLAS does that */
    if (lib == GEMM_ONEDNN && K > 0 &&
        dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha, A,
                   (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc) == dnnl_success)
        return;
    /* oneDNN refused the call (it validates like cblas, so only on our own bug): OpenBLAS runs it */
#endif
    openblas_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ------------------------------------------------------------ bf16 */
static int bf16_forced_off; /* gemm_bf16_force_unavailable: tests of the error path */
static atomic_ulong bf16_fallbacks;

unsigned long gemm_bf16_fallbacks(void) { return atomic_load(&bf16_fallbacks); }

void gemm_bf16_force_unavailable(int on) { bf16_forced_off = on; }

/* The CPU test: oneDNN runs bf16 on plain AVX-512 too, but by emulating the bf16 dot products
 * (slower than fp32); AVX512-BF16 (Cooper Lake, Zen 4 and later) and AMX have them in hardware.
 * oneDNN's ISA values are bit masks containing those of the ISAs they extend. */
static int bf16_cpu_has(void) {
#if ALGOPROG_ONEDNN
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), need = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    return (isa & need) == need;
#else
    return 0;
#endif
}

int gemm_bf16_available(void) { return !bf16_forced_off && bf16_cpu_has(); }

int gemm_set_precision(GemmPrecision p, Status *st) {
    if (p != GEMM_FP32 && p != GEMM_BF16) return status_fail(st, AP_EINVAL, "unknown GEMM precision %d", (int)p);
    if (p == GEMM_BF16 && !gemm_bf16_available()) {
#if ALGOPROG_ONEDNN
        return status_fail(st, AP_EINVAL,
                           "precision=bf16 needs a CPU with AVX512-BF16 or AMX, and oneDNN runs %s here%s; use "
                           "precision=fp32",
                           onednn_isa_name(), bf16_forced_off ? " (bf16 switched off by a test)" : "");
#else
        return status_fail(st, AP_EINVAL,
                           "precision=bf16 runs on oneDNN's bf16 matmul, and this build has no oneDNN (install "
                           "libdnnl-dev and reconfigure, or use precision=fp32)");
#endif
    }
    precision = p;
    return 0;
}

GemmPrecision gemm_precision(void) { return precision; }

const char *gemm_precision_name(GemmPrecision p) { return p == GEMM_BF16 ? "bf16" : "fp32"; }

int gemm_bf16_applies(size_t M, size_t N, size_t K) {
    double m = (double)M, n = (double)N;
    return m * n * (double)K >= GEMM_BF16_MIN_WORK && m * n >= GEMM_BF16_MIN_REUSE * (m + n);
}

#if ALGOPROG_ONEDNN
/* One primitive of the per-thread cache. A and B are converted into dense buffers, so only the
 * shape, the transposes, C's row stride, alpha and beta make a primitive different. */
typedef struct {
    size_t M, N, K, ldc;
    int ta, tb;
    float alpha, beta;
    uint64_t used; /* the thread's clock at the last use: a full cache replaces the least recent */
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, pad; /* descriptions only: the data pointers are set per call */
    size_t pad_bytes;
} Bf16Entry;

/* A training step repeats a few dozen shapes (forward, dx and dW of each kind of linear layer, the
 * evaluation batch's, Muon's, attention's blocks at long contexts), so each thread keeps this
 * many primitives. */
#define BF16_CACHE 128

typedef struct {
    dnnl_stream_t stream;
    Bf16Entry cache[BF16_CACHE];
    int n;
    uint64_t clock;
    uint16_t *buf; /* op(A) then op(B) in bf16, grown as needed */
    size_t buf_elems;
    void *pad; /* the primitives' scratchpad (user mode: no allocation inside oneDNN per call) */
    size_t pad_bytes;
} Bf16Thread;

static dnnl_engine_t bf16_engine;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
/* Each thread has its own primitives, stream and buffers: attention calls from inside our
 * parallel region, and nothing is shared but the engine (oneDNN engines are thread-safe). */
static _Thread_local Bf16Thread *bf16_mine;

static void bf16_engine_init(void) {
    if (dnnl_engine_create(&bf16_engine, dnnl_cpu, 0) != dnnl_success) bf16_engine = NULL;
}

static Bf16Thread *bf16_thread(void) {
    if (bf16_mine) return bf16_mine;
    pthread_once(&bf16_once, bf16_engine_init);
    if (!bf16_engine) return NULL;
    Bf16Thread *th = calloc(1, sizeof *th);
    if (!th) return NULL;
    if (dnnl_stream_create(&th->stream, bf16_engine, dnnl_stream_default_flags) != dnnl_success) {
        free(th);
        return NULL;
    }
    return bf16_mine = th;
}

static void bf16_entry_free(Bf16Entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->src) dnnl_memory_destroy(e->src);
    if (e->wei) dnnl_memory_destroy(e->wei);
    if (e->dst) dnnl_memory_destroy(e->dst);
    if (e->pad) dnnl_memory_destroy(e->pad);
    memset(e, 0, sizeof *e);
}

/* The matmul src (M,K) = op(A), weights (K,N) = op(B), both dense bf16 as stored (a transpose is
 * a swap of strides), dst (M,N) f32 with row stride ldc; alpha as the output scale, beta as a sum
 * post-op (dst = alpha * src weights + beta * dst). Scratchpad in user mode. */
static int bf16_entry_init(Bf16Entry *e) {
    dnnl_dim_t M = (dnnl_dim_t)e->M, N = (dnnl_dim_t)e->N, K = (dnnl_dim_t)e->K;
    dnnl_dims_t a_dims = {M, K}, b_dims = {K, N}, c_dims = {M, N};
    dnnl_dims_t a_str = {e->ta ? 1 : K, e->ta ? M : 1}, b_str = {e->tb ? 1 : N, e->tb ? K : 1};
    dnnl_dims_t c_str = {(dnnl_dim_t)e->ldc, 1};
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_bf16, a_str) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_bf16, b_str) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
             (e->alpha == 1.0f || dnnl_primitive_attr_set_output_scales(attr, 1, 0, &e->alpha) == dnnl_success);
    if (ok && e->beta != 0.0f)
        ok = dnnl_post_ops_create(&ops) == dnnl_success && dnnl_post_ops_append_sum(ops, e->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, bf16_engine, NULL) == dnnl_success;
    if (ok) {
        /* the reference implementation is a plain loop, hundreds of times slower: never accept it */
        const char *impl = NULL;
        ok = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
             strncmp(impl, "ref", 3) != 0;
    }
    if (ok) {
        const dnnl_memory_desc_t *pad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->pad_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
        ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
             dnnl_memory_create(&e->src, &a_md, bf16_engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&e->wei, &b_md, bf16_engine, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&e->dst, &c_md, bf16_engine, DNNL_MEMORY_NONE) == dnnl_success &&
             (!e->pad_bytes || dnnl_memory_create(&e->pad, pad_md, bf16_engine, DNNL_MEMORY_NONE) == dnnl_success);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) bf16_entry_free(e);
    return ok ? 0 : -1;
}

static Bf16Entry *bf16_lookup(Bf16Thread *th, size_t M, size_t N, size_t K, int ta, int tb, size_t ldc, float alpha,
                              float beta) {
    th->clock++;
    for (int i = 0; i < th->n; i++) {
        Bf16Entry *e = &th->cache[i];
        if (e->M == M && e->N == N && e->K == K && e->ta == ta && e->tb == tb && e->ldc == ldc && e->alpha == alpha &&
            e->beta == beta) {
            e->used = th->clock;
            return e;
        }
    }
    Bf16Entry *e = &th->cache[th->n < BF16_CACHE ? th->n : 0];
    if (th->n == BF16_CACHE) {
        for (int i = 1; i < BF16_CACHE; i++)
            if (th->cache[i].used < e->used) e = &th->cache[i];
        bf16_entry_free(e);
    } else {
        th->n++;
    }
    e->M = M, e->N = N, e->K = K, e->ta = ta, e->tb = tb, e->ldc = ldc, e->alpha = alpha, e->beta = beta;
    e->used = th->clock;
    if (bf16_entry_init(e) == 0) return e;
    /* keep the cache dense: the failed slot becomes the last one's */
    *e = th->cache[--th->n];
    memset(&th->cache[th->n], 0, sizeof th->cache[th->n]);
    return NULL;
}

/* Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then drop 16 bits. A NaN
 * stays a quiet NaN (the addition could carry its payload into the exponent, or the sign). */
static inline uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
}

/* rows x cols of X (row stride ld) into dense out; in parallel when big and not already inside
 * one of our regions */
static void bf16_convert(uint16_t *out, const float *X, size_t rows, size_t cols, size_t ld) {
#pragma omp parallel for schedule(static) if (rows * cols >= (1u << 16) && !omp_in_parallel())
    for (size_t i = 0; i < rows; i++) {
        const float *x = X + i * ld;
        uint16_t *o = out + i * cols;
#pragma omp simd
        for (size_t j = 0; j < cols; j++) o[j] = bf16_round(x[j]);
    }
}
#endif

int gemm_bf16_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return 0;
    if (K == 0 || !gemm_bf16_available()) return -1;
#if ALGOPROG_ONEDNN
    Bf16Thread *th = bf16_thread();
    if (!th) return -1;
    /* op(B) starts on a 64-byte boundary (32 bf16 values) after op(A) */
    size_t na = (M * K + 31) & ~(size_t)31, need = na + K * N;
    if (need > th->buf_elems) {
        free(th->buf);
        th->buf = aligned_alloc(64, ((need + 31) & ~(size_t)31) * sizeof(uint16_t));
        th->buf_elems = th->buf ? need : 0;
        if (!th->buf) return -1;
    }
    Bf16Entry *e = bf16_lookup(th, M, N, K, transA != 0, transB != 0, ldc, alpha, beta);
    if (!e) return -1;
    if (e->pad_bytes > th->pad_bytes) {
        free(th->pad);
        th->pad = aligned_alloc(64, (e->pad_bytes + 63) & ~(size_t)63);
        th->pad_bytes = th->pad ? e->pad_bytes : 0;
        if (!th->pad) return -1;
    }
    bf16_convert(th->buf, A, transA ? K : M, transA ? M : K, lda);
    bf16_convert(th->buf + na, B, transB ? N : K, transB ? K : N, ldb);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst},
                               {DNNL_ARG_SCRATCHPAD, e->pad}};
    int nargs = e->pad ? 4 : 3;
    if (dnnl_memory_set_data_handle(e->src, th->buf) != dnnl_success ||
        dnnl_memory_set_data_handle(e->wei, th->buf + na) != dnnl_success ||
        dnnl_memory_set_data_handle(e->dst, C) != dnnl_success ||
        (e->pad && dnnl_memory_set_data_handle(e->pad, th->pad) != dnnl_success))
        return -1;
    if (dnnl_primitive_execute(e->prim, th->stream, nargs, args) != dnnl_success) return -1;
    return dnnl_stream_wait(th->stream) == dnnl_success ? 0 : -1;
#else
    (void)transA, (void)transB, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
    return -1;
#endif
}

static void gemm_sgemm_untimed(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                               size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (precision == GEMM_BF16 && gemm_bf16_applies(M, N, K)) {
        if (!gemm_bf16_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
        atomic_fetch_add_explicit(&bf16_fallbacks, 1, memory_order_relaxed);
    }
    gemm_sgemm_on(current, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (!section_clock_timed()) {
        gemm_sgemm_untimed(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = time_now(); /* ~20 ns a call: well under 1% of the smallest products the models run */
    gemm_sgemm_untimed(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    section_clock_add(SECTION_GEMM, time_now() - t0);
}
