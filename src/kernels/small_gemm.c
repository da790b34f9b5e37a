/* small_gemm.c - products with a few rows on AVX-512 register tiles (see small_gemm.h).
 *
 * A tile holds 4 rows x V vectors of 16 columns (V <= 4) in registers; per step of k it loads V
 * vectors of B's row k and broadcasts the 4 rows' A[., k] into 4 V FMAs. A ragged last tile of
 * rows repeats its last row and stores only the real ones; the last vector of a row is masked
 * when n is not a multiple of 16, so no product has a scalar remainder. Compiled for AVX-512F by
 * function attribute and chosen at run time, like attention_tiles.c. */
#include "kernels/small_gemm.h"

#include "core/parallel.h"
#include "kernels/attention_tiles.h"
#include "kernels/gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <omp.h>

#define SG_TARGET __attribute__((target("avx512f")))
/* multiply-adds from which a product is split over the threads: a batch-8 LSTM step at hidden
 * 256 (2M) is; the studies' batch-4 steps at width 48-144 (40k-330k) stay on one */
#define SMALL_GEMM_PAR_MIN 1000000
#define SG_INLINE SG_TARGET static inline __attribute__((always_inline))

/* the same conditions as attention's tiles (16 stands for any width they take), and few rows */
int small_gemm_tiled(size_t m) { return m <= SMALL_GEMM_MAX_ROWS && att_tiles_usable(16); }

SG_INLINE void small_tile(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb, size_t rows,
                          size_t k, __mmask16 last, int accumulate, const int V) {
    __m512 c[4][4];
    const float *a[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        a[i] = A + (i < (int)rows ? (size_t)i : rows - 1) * lda;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) c[i][v] = _mm512_setzero_ps();
    }
    for (size_t p = 0; p < k; p++) {
        const float *b = B + p * ldb;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            bv[v] = v == V - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
            __asm__("" : "+v"(bv[v])); /* one load per vector, not one per row (attention_tiles.c) */
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512 x = _mm512_set1_ps(a[i][p]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) c[i][v] = _mm512_fmadd_ps(x, bv[v], c[i][v]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        if (i >= (int)rows) break;
        float *y = C + (size_t)i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            __mmask16 w = v == V - 1 ? last : (__mmask16)0xFFFF;
            __m512 x = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(w, y + 16 * v), c[i][v]) : c[i][v];
            _mm512_mask_storeu_ps(y + 16 * v, w, x);
        }
    }
}

/* Columns [j, j + 64) of C for all m rows: the block of B (k x 64 floats) stays in cache for every
 * 4 rows. */
SG_TARGET static void small_gemm_block(size_t j, size_t m, size_t n, size_t k, const float *A, size_t lda,
                                       const float *B, size_t ldb, float *C, size_t ldc, int accumulate) {
    size_t cols = n - j < 64 ? n - j : 64, nvec = (cols + 15) / 16, tail = cols - (nvec - 1) * 16;
    __mmask16 last = (__mmask16)(tail >= 16 ? 0xFFFF : (1u << tail) - 1);
    for (size_t r0 = 0; r0 < m; r0 += 4) {
        size_t rows = m - r0 < 4 ? m - r0 : 4;
        const float *a = A + r0 * lda;
        float *c = C + r0 * ldc + j;
        switch (nvec) {
        case 1: small_tile(c, ldc, a, lda, B + j, ldb, rows, k, last, accumulate, 1); break;
        case 2: small_tile(c, ldc, a, lda, B + j, ldb, rows, k, last, accumulate, 2); break;
        case 3: small_tile(c, ldc, a, lda, B + j, ldb, rows, k, last, accumulate, 3); break;
        default: small_tile(c, ldc, a, lda, B + j, ldb, rows, k, last, accumulate, 4); break;
        }
    }
}

/* Threads take whole column blocks, so each result has one summation order whatever their number;
 * small products stay on the calling thread without entering a parallel region (ops.h). */
static void small_gemm_tiles(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *B, size_t ldb,
                             float *C, size_t ldc, int accumulate) {
    if (m * n * k >= SMALL_GEMM_PAR_MIN && parallel_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j += 64) small_gemm_block(j, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    for (size_t j = 0; j < n; j += 64) small_gemm_block(j, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

void small_gemm(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                size_t ldc, int accumulate) {
    if (!small_gemm_tiled(m)) {
        gemm_sgemm(0, 0, m, n, k, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
        return;
    }
    int timed = section_clock_timed(); /* matrix-product time, as the library's (core/parallel.h) */
    double t0 = timed ? time_now() : 0.0;
    small_gemm_tiles(m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    if (timed) section_clock_add(SECTION_GEMM, time_now() - t0);
}

#else /* no AVX-512 tiles on this target: the GEMM library runs every product */

int small_gemm_tiled(size_t m) {
    (void)m;
    return 0;
}

void small_gemm(size_t m, size_t n, size_t k, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                size_t ldc, int accumulate) {
    gemm_sgemm(0, 0, m, n, k, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
}
#endif
