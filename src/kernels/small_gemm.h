/* small_gemm.h - matrix products with a few rows on AVX-512 register tiles (the LSTM's recurrence).
 *
 * The LSTM multiplies each step's state, one row per sequence (batch 4 in the studies), by its
 * recurrent weights: products of 4 x 4H x R, 256 of them per layer and pass. A library GEMM spends
 * most of such a call outside its inner loop (oneDNN: 90-130 GFLOP/s of the 230 one core has,
 * docs/BENCH.md); these tiles keep 4 rows x 64 columns of the result in registers and stream B
 * through once per 4 rows. Same gating as attention's tiles: AVX-512F on this CPU and the GEMM
 * library not pinned to OpenBLAS (`gemm = openblas` keeps every product on the library, the path
 * whose results are the same on every x86-64 machine). Results do not depend on the thread
 * count; they differ from a GEMM's by summation order only. */
#ifndef AP_SMALL_GEMM_H
#define AP_SMALL_GEMM_H

#include <stddef.h>

/* 1 when small_gemm runs on the tiles here (otherwise it calls gemm_sgemm). */
int small_gemm_tiled(void);

/* C (m, n) = A (m, k) B (k, n), plus C when accumulate; all row-major with row strides lda, ldb,
 * ldc; any m, n, k. Meant for m of a few rows: each 4 rows read all of B. */
void small_gemm(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                size_t ldc, int accumulate);

#endif
