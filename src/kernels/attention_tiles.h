/* attention_tiles.h - attention's per-head products as AVX-512 register tiles (attention.c's fast path).
 *
 * The study's models have heads of 16 or 32 wide. A library GEMM on a 64 x 256 x 16 block spends
 * most of its time packing and in edge code (28-47% of the FMA peak, docs/BENCH.md); these tiles
 * keep a few rows of the result in registers, read the other operand as whole 16-float vectors and
 * broadcast the first, so head widths that are multiples of 16 run near the FMA rate. They also
 * skip what the causal mask makes zero: each tile of rows stops at the last key its last row sees.
 *
 * Masking convention, shared by the three products: row r of the block sees columns (keys)
 * [0, diag + r]; entries right of that are zero in the probabilities and their gradients, and the
 * scores there are never read (pass diag >= n for "every column").
 * All matrices are row-major with the given row strides; hd is the head width. Results do not depend
 * on the thread count; they differ from a GEMM's by summation order only. */
#ifndef AP_ATTENTION_TILES_H
#define AP_ATTENTION_TILES_H

#include <stddef.h>

/* 1 when the tiles can run a head of width hd here: AVX-512F on this CPU, hd in {16, 32, 48, 64},
 * the GEMM library not pinned to OpenBLAS (gemm = openblas runs attention's products on it too: the
 * path whose results are the same on every x86-64 machine, which tests/test_golden.py pins), and
 * not switched off by att_tiles_disable. */
int att_tiles_usable(size_t hd);
/* Testing and benchmarking aid: on != 0 sends every head through the GEMM path, as on a CPU
 * without AVX-512 (process-wide, like gemm_use). */
void att_tiles_disable(int on);

/* Scores: S[r][j] = alpha * sum_d A[r][d] Bt[d][j] for r < m and j < min(n, diag + r + 1) rounded
 * up to a multiple of 16 (the softmax reads whole vectors); other entries of S are not written.
 * Bt is the key (or value) block transposed: hd rows of ldb floats. */
void att_tiles_scores(float *S, size_t lds, const float *A, size_t lda, const float *Bt, size_t ldb, size_t m,
                      size_t n, size_t hd, size_t diag, float alpha);

/* Rows times: C[r][:] (+)= row_scale[r] * sum_{j <= diag + r, j < n} P[r][j] B[j][:] for r < m (C is
 * (m, hd); B is (n, hd); row_scale NULL for 1); accumulate = 0 overwrites C. P must be zero right of
 * each row's diagonal up to the tile's last row's (the softmax and its gradient write those zeros). */
void att_tiles_rows_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                          size_t n, size_t hd, size_t diag, int accumulate, const float *row_scale);

/* Columns times: C[j][:] += sum_{r >= j - diag, r < m} P[r][j] B[r][:] for j < n (C is (n, hd);
 * B is (m, hd)): P^T B with P's masked entries skipped. Rows j >= write_from are written over
 * instead (their first contribution; n for none); each has a row that sees it when write_from >= diag. */
void att_tiles_cols_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                          size_t n, size_t hd, size_t diag, size_t write_from);

/* The causal softmax of a block's scores in place, not yet divided by the sums: row r becomes
 * e^(s - max) over its visible columns [0, diag + r] (diag + r < n), zeros from there to n, on
 * whole vectors with tree reductions; row_max[r] and row_inv[r] (m floats each) receive its
 * maximum score and 1 / sum. The caller divides (attention.c passes row_inv to the rows-times
 * product as its row_scale). */
void att_tiles_softmax(float *S, size_t lds, size_t m, size_t n, size_t diag, float *row_max, float *row_inv);

/* The backward from recomputed probabilities in one pass: S holds the block's scores on entry and
 * the probabilities on return: e^(s - max) exactly as att_tiles_softmax computed it, times the saved
 * 1 / sum (rounded once more, the same way every time); D holds
 * dP on entry and dS = P * (dP - sum_j P[r][j] dP[r][j]) * scale on return, that sum taken as
 * G[r] . O[r] (dO and the forward's output, rows of hd: the same number, since O = P V and
 * dP = dO V^T; Dao 2023), so no pass over P has to come first. Zeros from each row's last visible
 * column to n in both. */
void att_tiles_softmax_backward_recompute(float *D, size_t ldd, float *S, size_t lds, size_t m, size_t n,
                                          size_t diag, const float *row_max, const float *row_inv,
                                          const float *G, size_t ldg, const float *O, size_t ldo, size_t hd,
                                          float scale);

/* Bt[d][j] = X[j][d] for j < n, d < hd: a head's keys or values as hd rows of ldb floats (hd a
 * multiple of 16; AVX-512, like the products). */
void att_tiles_transpose(float *Bt, size_t ldb, const float *X, size_t ldx, size_t n, size_t hd);

#endif
