/* gemm.h - every fp32 matrix product of the library, on oneDNN or OpenBLAS.
 *
 * One row-major entry point with cblas's meaning. Which library runs it is a process-wide choice,
 * like the thread count (model_create sets it from the recipe's `gemm` key):
 * - GEMM_ONEDNN: oneDNN's JIT sgemm, which uses the CPU's widest vectors (AVX-512 where present);
 * - GEMM_OPENBLAS: OpenBLAS, always linked (it also runs the decode sgemv);
 * - GEMM_AUTO: oneDNN when the build has it, except on shapes where OpenBLAS measured faster
 *   (gemm_auto_pick; docs/BENCH.md has the numbers behind the rule), else OpenBLAS.
 * Both libraries use libgomp's pool (parallel.h) and run single-threaded when called inside one of
 * our parallel regions. For a given library, shape and thread count the result is bit-identical
 * from run to run; across libraries it differs by rounding (tests/test_ops.c holds both to a
 * double-precision reference).
 *
 * Precision, also process-wide (model_create sets it from the recipe's `precision` key):
 * - GEMM_FP32 (default): everything above, unchanged.
 * - GEMM_BF16: gemm_sgemm rounds op(A) and op(B) to bfloat16 (round to nearest even) and runs
 *   oneDNN's matmul primitive with fp32 accumulation, alpha and beta in fp32, and C in fp32; the
 *   caller's arrays (master weights, activations, gradients) stay fp32. Only on a CPU with
 *   AVX512-BF16 or AMX, in a build with oneDNN (gemm_bf16_available); elsewhere
 *   gemm_set_precision fails, so a bf16 recipe never silently runs fp32. Products too small to
 *   gain (gemm_bf16_applies, the rule below) stay fp32 on the `gemm` library. Which library
 *   `gemm` names does not matter to the bf16 products. bf16 keeps 8 significant bits, so each
 *   rounded input has relative error <= 2^-8, each term a*b <= 2^-7 + 2^-16, and a bf16 product
 *   is off by at most that fraction (7.8e-3) of the sum of |terms| (tests/test_ops.c: 8e-3). */
#ifndef AP_GEMM_H
#define AP_GEMM_H

#include "core/status.h"

#include <stddef.h>

/* Same order as the recipe key's values (config.c: auto, onednn, openblas). */
typedef enum { GEMM_AUTO = 0, GEMM_ONEDNN = 1, GEMM_OPENBLAS = 2 } GemmLib;

/* 1 when the build links oneDNN (CMake found libdnnl-dev and ALGOPROG_WITH_ONEDNN is on). */
int gemm_have_onednn(void);
/* Makes lib the process's choice; fails (and keeps the old one) for oneDNN in a build without it. */
int gemm_use(GemmLib lib, Status *st);
GemmLib gemm_current(void);
const char *gemm_lib_name(GemmLib lib); /* "auto", "onednn", "openblas" */
/* The libraries of this build, e.g. "oneDNN 2.6.3 (avx512_core_bf16) + OpenBLAS 0.3.21 (Haswell)". */
void gemm_describe(char *buf, size_t size);

/* The library GEMM_AUTO runs a product of this shape on (never GEMM_AUTO); in_parallel: called
 * inside one of our parallel regions (one thread per product). */
GemmLib gemm_auto_pick(size_t M, size_t N, size_t K, int in_parallel);

typedef enum { GEMM_FP32 = 0, GEMM_BF16 = 1 } GemmPrecision;

/* The bf16 rule: a product runs in bf16 when it has at least GEMM_BF16_MIN_WORK multiply-adds
 * and each bf16 value converted feeds at least GEMM_BF16_MIN_REUSE of them on average:
 * M*N*K / (M*K + K*N) = M*N / (M+N) (converting op(A) and op(B) costs as much as that many
 * multiply-adds; a primitive's call costs a few microseconds). Measured on Zen 5, one thread
 * (docs/BENCH.md): the linear layers' products (10^8 and up, M*N/(M+N) >= 100) run 1.5-2x
 * faster in bf16; attention's 64 x 512 x 64 blocks (2^21) only break even and smaller blocks
 * lose up to 2.5x; the LSTM's per-step products (16 rows: M*N/(M+N) = 15) lose 2x, and a
 * 192 x 48 x 1024 weight gradient (38) loses 13%. So in every preset and bench config attention
 * and the LSTM's recurrence stay fp32, and the linear layers (and Muon's large products) run in
 * bf16. */
#define GEMM_BF16_MIN_WORK 4194304.0
#define GEMM_BF16_MIN_REUSE 48.0

/* 1 when bf16 products can run here: the build has oneDNN, the CPU has AVX512-BF16 or AMX (as
 * oneDNN detects it), and no test has forced it off. */
int gemm_bf16_available(void);
/* Makes p the process's precision; fails (and keeps the old one) for bf16 where unavailable. */
int gemm_set_precision(GemmPrecision p, Status *st);
GemmPrecision gemm_precision(void);
const char *gemm_precision_name(GemmPrecision p); /* "fp32", "bf16" */
/* 1 when gemm_sgemm runs a product of this shape in bf16 under GEMM_BF16 (the rule above). */
int gemm_bf16_applies(size_t M, size_t N, size_t K);
/* Testing aid: on != 0 makes gemm_bf16_available() report 0, as on a CPU without bf16. */
void gemm_bf16_force_unavailable(int on);
/* How many products gemm_sgemm ran in fp32 because oneDNN refused a bf16 one (no memory, or no
 * fast bf16 kernel for that layout): 0 unless something is wrong. */
unsigned long gemm_bf16_fallbacks(void);

/* C (M,N) = alpha * op(A) op(B) + beta * C, all row-major; op(A) is (M,K), op(B) is (K,N), op(X)
 * is X^T when transX is set. lda, ldb, ldc are the row strides of A, B, C as stored. With
 * beta = 0, C is only written. */
void gemm_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The same in fp32 on one given library, whatever the precision (benchmarks and tests);
 * GEMM_AUTO applies gemm_auto_pick. */
void gemm_sgemm_on(GemmLib lib, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                   size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* gemm_sgemm with op(A), op(B) rounded to bf16 whatever the shape (benchmarks and tests; gemm_sgemm
 * calls it under GEMM_BF16). Returns 0, or -1 when bf16 is unavailable or oneDNN refused the
 * product, with C untouched (K = 0 is refused too: C = beta * C is fp32 work). Per thread: a
 * cache of oneDNN primitives by shape and buffers for the bf16 copies, so a repeated shape
 * allocates nothing. */
int gemm_bf16_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
