/* small_gemm.h - matrix products with a few rows on AVX-512 register tiles (the LSTM's recurrence).
 *
 * The LSTM multiplies each step's state, one row per sequence (batch 4 in the studies), by its
 * recurrent weights: products of 4 x 4H x R, 256 of them per layer and pass. A library GEMM spends
 * most of such a call outside its inner loop (oneDNN: 90-130 GFLOP/s of the 230 one core has,
 * docs/BENCH.md); these tiles keep 4 rows x 64 columns of the result in registers and stream B's
 * block of 64 columns through them once per 4 rows. Same gating as attention's tiles: AVX-512F on this CPU and the GEMM
 * library not pinned to OpenBLAS (`gemm = openblas` keeps every product on the library, the path
 * whose results are the same on every x86-64 machine). Results do not depend on the thread
 * count; they differ from a GEMM's by summation order only. */
#ifndef AP_SMALL_GEMM_H
#define AP_SMALL_GEMM_H

#include <stddef.h>

/* Rows up to which the tiles run: above, the library is faster (each 4 rows read a block of B
 * again). Measured on Zen 5, one thread (docs/BENCH.md): 4 x 416 x 104 at 188 GFLOP/s against
 * oneDNN's 88; 16 x 1024 x 256 (the bench's lstm config) at 112 against 130. */
#define SMALL_GEMM_MAX_ROWS 8

/* 1 when small_gemm runs a product of m rows on the tiles here (otherwise it calls gemm_sgemm). */
int small_gemm_tiled(size_t m);

/* C (m, n) = A (m, k) B (k, n), plus C when accumulate; all row-major with row strides lda, ldb,
 * ldc; any m, n, k. */
void small_gemm(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                size_t ldc, int accumulate);

#endif
