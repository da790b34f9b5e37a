/* attention_tiles.c - attention's per-head products as AVX-512 register tiles (see attention_tiles.h).
 *
 * Each product keeps R x V accumulators (R rows or keys, V = hd/16 vectors of a head row, or V
 * vectors of 16 keys) in registers: per step it loads V vectors of one operand and broadcasts R
 * floats of the other into R x V FMAs, so a step is bound by the FMA units, not by loads. The
 * tile shapes are compile-time constants (always-inlined templates instantiated from a switch);
 * a ragged last tile of rows repeats its last row and stores only the real ones, so no product has
 * a scalar remainder. Compiled for AVX-512F by function attribute, chosen at run time
 * (att_tiles_usable), so the build needs no -march. */
#include "kernels/attention_tiles.h"

#include "kernels/gemm.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_int tiles_disabled;

void att_tiles_disable(int on) { atomic_store(&tiles_disabled, on != 0); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define TILE_TARGET __attribute__((target("avx512f")))
#define TILE_INLINE TILE_TARGET static inline __attribute__((always_inline))

int att_tiles_usable(size_t hd) {
    return hd && hd % 16 == 0 && hd <= 64 && !atomic_load(&tiles_disabled) && gemm_current() != GEMM_OPENBLAS &&
           __builtin_cpu_supports("avx512f");
}

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* The first k lanes. */
TILE_INLINE __mmask16 lanes(size_t k) { return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1); }

/* ---- scores: SCORES_ROWS rows (interleaved in ap: ap[d * SCORES_ROWS + i]) x V vectors of 16 keys
 * from column j; `last` masks the last vector */
#define SCORES_ROWS 4
TILE_INLINE void scores_tile(float *S, size_t lds, const float *ap, const float *Bt, size_t ldb, size_t rows,
                             size_t hd, size_t j, __mmask16 last, float alpha, const int V) {
    const int R = SCORES_ROWS;
    __m512 c[SCORES_ROWS][4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) c[i][v] = _mm512_setzero_ps();
    for (size_t d = 0; d < hd; d++) {
        const float *b = Bt + d * ldb + j;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            bv[v] = v == V - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
            /* keep it in a register: GCC otherwise folds the load into each row's FMA, which makes
             * R times the 64-byte loads and halves the rate where the core loads one per cycle */
            __asm__("" : "+v"(bv[v]));
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            __m512 x = _mm512_set1_ps(ap[d * SCORES_ROWS + (size_t)i]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) c[i][v] = _mm512_fmadd_ps(x, bv[v], c[i][v]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        if (i >= (int)rows) break;
        float *s = S + (size_t)i * lds + j;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            __m512 y = _mm512_mul_ps(c[i][v], al);
            if (v == V - 1)
                _mm512_mask_storeu_ps(s + 16 * v, last, y);
            else
                _mm512_storeu_ps(s + 16 * v, y);
        }
    }
}

/* One function per tile width. With every width inlined into att_tiles_scores and four row
 * pointers, GCC (12) ran short of registers, kept pointers in vector registers and spilled one
 * vector of keys to the stack, reloading it for each row's FMA: 7-8% of the attention's time. */
#define SCORES_TILE_FN(V)                                                                                              \
    TILE_TARGET static __attribute__((noinline)) void scores_tile_##V(float *S, size_t lds, const float *ap,          \
                                                                      const float *Bt, size_t ldb, size_t rows,       \
                                                                      size_t hd, size_t j, __mmask16 last,            \
                                                                      float alpha) {                                  \
        scores_tile(S, lds, ap, Bt, ldb, rows, hd, j, last, alpha, V);                                                 \
    }
SCORES_TILE_FN(1)
SCORES_TILE_FN(2)
SCORES_TILE_FN(3)
SCORES_TILE_FN(4)

TILE_TARGET void att_tiles_scores(float *S, size_t lds, const float *A, size_t lda, const float *Bt, size_t ldb,
                                  size_t m, size_t n, size_t hd, size_t diag, float alpha) {
    for (size_t r0 = 0; r0 < m; r0 += SCORES_ROWS) {
        size_t rows = min_size(SCORES_ROWS, m - r0);
        /* the tile's last row sees keys [0, diag + r0 + rows): whole vectors of them, within n */
        size_t lim = min_size(n, (min_size(n, diag + r0 + rows) + 15) & ~(size_t)15);
        float *s = S + r0 * lds;
        /* the tile's rows interleaved (a ragged tile repeats its last), so every broadcast reads
         * through one pointer; hd <= 64 (att_tiles_usable) */
        float ap[SCORES_ROWS * 64];
        for (size_t d = 0; d < hd; d++)
            for (size_t i = 0; i < SCORES_ROWS; i++)
                ap[d * SCORES_ROWS + i] = A[(r0 + (i < rows ? i : rows - 1)) * lda + d];
        size_t j = 0;
        for (; j + 64 <= lim; j += 64) scores_tile_4(s, lds, ap, Bt, ldb, rows, hd, j, 0xFFFF, alpha);
        /* the last 1-63 keys as one tile of 1-4 vectors (a tile per vector would wait on its FMAs'
         * latency), the last vector masked */
        if (j == lim) continue;
        __mmask16 last = lanes(lim - j - (lim - j - 1) / 16 * 16);
        switch ((lim - j + 15) / 16) {
        case 1: scores_tile_1(s, lds, ap, Bt, ldb, rows, hd, j, last, alpha); break;
        case 2: scores_tile_2(s, lds, ap, Bt, ldb, rows, hd, j, last, alpha); break;
        case 3: scores_tile_3(s, lds, ap, Bt, ldb, rows, hd, j, last, alpha); break;
        default: scores_tile_4(s, lds, ap, Bt, ldb, rows, hd, j, last, alpha); break;
        }
    }
}

/* ---- rows times: R rows of C, V = hd/16 vectors each, summed over keys [0, nk) */
TILE_INLINE void rows_times_tile(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb,
                                 size_t rows, size_t nk, int accumulate, const float *row_scale, const int R,
                                 const int V) {
    __m512 c[16][4];
    const float *p[16];
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        p[i] = P + (i < (int)rows ? (size_t)i : rows - 1) * ldp;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) c[i][v] = _mm512_setzero_ps();
    }
    for (size_t j = 0; j < nk; j++) {
        const float *b = B + j * ldb;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            __m512 x = _mm512_set1_ps(p[i][j]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) c[i][v] = _mm512_fmadd_ps(x, bv[v], c[i][v]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        if (i >= (int)rows) break;
        float *y = C + (size_t)i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            __m512 x = row_scale ? _mm512_mul_ps(c[i][v], _mm512_set1_ps(row_scale[i])) : c[i][v];
            _mm512_storeu_ps(y + 16 * v, accumulate ? _mm512_add_ps(_mm512_loadu_ps(y + 16 * v), x) : x);
        }
    }
}

TILE_INLINE void rows_times_v(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                              size_t n, size_t diag, int accumulate, const float *row_scale, const int R,
                              const int V) {
    for (size_t r0 = 0; r0 < m; r0 += R) {
        size_t rows = min_size(R, m - r0), nk = min_size(n, diag + r0 + rows);
        rows_times_tile(C + r0 * ldc, ldc, P + r0 * ldp, ldp, B, ldb, rows, nk, accumulate,
                        row_scale ? row_scale + r0 : NULL, R, V);
    }
}

/* Tiles of 8 rows at every width: 16 rows (one load of B per 16 FMAs at hd 16) needed more row
 * pointers than there are registers, and the spills cost more than the loads saved. */
TILE_TARGET void att_tiles_rows_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb,
                                      size_t m, size_t n, size_t hd, size_t diag, int accumulate,
                                      const float *row_scale) {
    switch (hd / 16) {
    case 1: rows_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, accumulate, row_scale, 8, 1); break;
    case 2: rows_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, accumulate, row_scale, 8, 2); break;
    case 3: rows_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, accumulate, row_scale, 4, 3); break;
    case 4: rows_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, accumulate, row_scale, 4, 4); break;
    default: abort(); /* att_tiles_usable said no */
    }
}

/* ---- columns times: J keys of C (V vectors each) from key j0, summed over rows [rs, m) */
TILE_INLINE void cols_times_tile(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb,
                                 size_t cols, size_t rs, size_t m, size_t keep, const int full, const int J,
                                 const int V) {
    __m512 c[16][4];
#pragma GCC unroll 16
    for (int i = 0; i < J; i++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) c[i][v] = _mm512_setzero_ps();
    for (size_t r = rs; r < m; r++) {
        const float *b = B + r * ldb, *p = P + r * ldp;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < J; i++) {
            /* a ragged last tile repeats its last key (never stored) rather than read past it */
            __m512 x = _mm512_set1_ps(p[full || i < (int)cols ? (size_t)i : cols - 1]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) c[i][v] = _mm512_fmadd_ps(x, bv[v], c[i][v]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < J; i++) {
        if (i >= (int)cols) break;
        float *y = C + (size_t)i * ldc;
        if ((size_t)i >= keep) { /* the key's first contribution: written over */
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) _mm512_storeu_ps(y + 16 * v, c[i][v]);
            continue;
        }
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) _mm512_storeu_ps(y + 16 * v, _mm512_add_ps(_mm512_loadu_ps(y + 16 * v), c[i][v]));
    }
}

TILE_INLINE void cols_times_v(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                              size_t n, size_t diag, size_t write_from, const int J, const int V) {
    for (size_t j0 = 0; j0 < n; j0 += J) {
        size_t cols = min_size(J, n - j0), rs = j0 > diag ? j0 - diag : 0; /* rows before rs see none of them */
        size_t keep = write_from > j0 ? write_from - j0 : 0;                /* keys of the tile added onto */
        if (rs >= m) break;
        if (cols == (size_t)J)
            cols_times_tile(C + j0 * ldc, ldc, P + j0, ldp, B, ldb, cols, rs, m, keep, 1, J, V);
        else
            cols_times_tile(C + j0 * ldc, ldc, P + j0, ldp, B, ldb, cols, rs, m, keep, 0, J, V);
    }
}

TILE_TARGET void att_tiles_cols_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb,
                                      size_t m, size_t n, size_t hd, size_t diag, size_t write_from) {
    switch (hd / 16) {
    case 1: cols_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, write_from, 16, 1); break;
    case 2: cols_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, write_from, 8, 2); break;
    case 3: cols_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, write_from, 4, 3); break;
    case 4: cols_times_v(C, ldc, P, ldp, B, ldb, m, n, diag, write_from, 4, 4); break;
    default: abort(); /* att_tiles_usable said no */
    }
}

/* ---- the causal softmax and its gradient, a row at a time on whole vectors */

/* e^x on 16 lanes: ap_expf's range reduction and polynomial (fastmath.h), 2^n applied by scalef */
TILE_INLINE __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-6f), r);
    __m512 p = _mm512_set1_ps(1.98412698e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.38888889e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.33333333e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16666667e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666667e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Row r's visible keys and the end of their last vector (within n). */
static inline void row_extent(size_t r, size_t n, size_t diag, size_t *vis, size_t *nv) {
    *vis = min_size(n, diag + r + 1);
    *nv = min_size(n, (*vis + 15) & ~(size_t)15);
}

/* The lanes of the vector at j that are below `end` (none when j >= end). */
TILE_INLINE __mmask16 below(size_t end, size_t j) { return j < end ? lanes(end - j) : 0; }

TILE_TARGET void att_tiles_softmax(float *S, size_t lds, size_t m, size_t n, size_t diag, float *row_max,
                                   float *row_inv) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), zero = _mm512_setzero_ps();
    for (size_t r = 0; r < m; r++) {
        float *p = S + r * lds;
        size_t vis, nv;
        row_extent(r, n, diag, &vis, &nv);
        __m512 m0 = ninf, m1 = ninf; /* two chains of maxima, two of sums */
        size_t j = 0;
        for (; j + 32 <= vis; j += 32) {
            m0 = _mm512_max_ps(m0, _mm512_loadu_ps(p + j));
            m1 = _mm512_max_ps(m1, _mm512_loadu_ps(p + j + 16));
        }
        for (; j < vis; j += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, below(vis, j), p + j));
        __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1))), s0 = zero, s1 = zero;
        for (j = 0; j + 32 <= vis; j += 32) {
            __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(p + j), top));
            __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(p + j + 16), top));
            _mm512_storeu_ps(p + j, e0);
            _mm512_storeu_ps(p + j + 16, e1);
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
        }
        for (; j < nv; j += 16) {
            __mmask16 k = below(vis, j);
            __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), top)));
            _mm512_mask_storeu_ps(p + j, below(nv, j), e);
            s0 = _mm512_add_ps(s0, e);
        }
        /* the caller divides by the sum (attention.c: at the rows-times product's store) */
        row_max[r] = _mm512_cvtss_f32(top), row_inv[r] = 1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        for (j = nv; j < n; j += 16) _mm512_mask_storeu_ps(p + j, below(n, j), zero);
    }
}

TILE_TARGET void att_tiles_softmax_backward_recompute(float *D, size_t ldd, float *S, size_t lds, size_t m, size_t n,
                                                      size_t diag, const float *row_max, const float *row_inv,
                                                      const float *G, size_t ldg, const float *O, size_t ldo,
                                                      size_t hd, float scale) {
    const __m512 zero = _mm512_setzero_ps(), sc = _mm512_set1_ps(scale);
    for (size_t r = 0; r < m; r++) {
        float *p = S + r * lds, *d = D + r * ldd;
        size_t vis, nv;
        row_extent(r, n, diag, &vis, &nv);
        const __m512 top = _mm512_set1_ps(row_max[r]), inv = _mm512_set1_ps(row_inv[r]);
        __m512 acc = zero;
        for (size_t e = 0; e < hd; e += 16)
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(G + r * ldg + e), _mm512_loadu_ps(O + r * ldo + e), acc);
        const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
        for (size_t j = 0; j < nv; j += 16) {
            /* the softmax's two roundings, e^(s - max) then times 1 / sum; masked lanes are 0 */
            __mmask16 k = below(vis, j), w = below(nv, j);
            __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), top)));
            __m512 pr = _mm512_mul_ps(e, inv);
            _mm512_mask_storeu_ps(p + j, w, pr);
            __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, d + j), dot);
            _mm512_mask_storeu_ps(d + j, w, _mm512_mul_ps(_mm512_mul_ps(pr, g), sc));
        }
        for (size_t j = nv; j < n; j += 16) {
            _mm512_mask_storeu_ps(p + j, below(n, j), zero);
            _mm512_mask_storeu_ps(d + j, below(n, j), zero);
        }
    }
}

/* ---- transposing a head: 16 x 16 blocks in registers (unpacks within 128-bit lanes, then lane
 * shuffles), a scalar loop for the last n % 16 keys */
TILE_INLINE void transpose16(float *y, size_t ldy, const float *x, size_t ldx) {
    __m512 r[16], a[16], b[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + (size_t)i * ldx);
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        __m512d a0 = _mm512_castps_pd(a[i]), a1 = _mm512_castps_pd(a[i + 1]);
        __m512d a2 = _mm512_castps_pd(a[i + 2]), a3 = _mm512_castps_pd(a[i + 3]);
        b[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    /* b[4g + k], lane L: column 4L + k of rows 4g..4g+3 */
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 c0 = _mm512_shuffle_f32x4(b[k], b[4 + k], 0x88), c1 = _mm512_shuffle_f32x4(b[k], b[4 + k], 0xDD);
        __m512 d0 = _mm512_shuffle_f32x4(b[8 + k], b[12 + k], 0x88);
        __m512 d1 = _mm512_shuffle_f32x4(b[8 + k], b[12 + k], 0xDD);
        _mm512_storeu_ps(y + (size_t)k * ldy, _mm512_shuffle_f32x4(c0, d0, 0x88));
        _mm512_storeu_ps(y + (size_t)(8 + k) * ldy, _mm512_shuffle_f32x4(c0, d0, 0xDD));
        _mm512_storeu_ps(y + (size_t)(4 + k) * ldy, _mm512_shuffle_f32x4(c1, d1, 0x88));
        _mm512_storeu_ps(y + (size_t)(12 + k) * ldy, _mm512_shuffle_f32x4(c1, d1, 0xDD));
    }
}

TILE_TARGET void att_tiles_transpose(float *Bt, size_t ldb, const float *X, size_t ldx, size_t n, size_t hd) {
    size_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16)
        for (size_t d0 = 0; d0 < hd; d0 += 16) transpose16(Bt + d0 * ldb + j0, ldb, X + j0 * ldx + d0, ldx);
    for (size_t d = 0; d < hd; d++)
        for (size_t j = j0; j < n; j++) Bt[d * ldb + j] = X[j * ldx + d];
}

#else /* no AVX-512 tiles on this target: attention.c keeps its GEMM path */

int att_tiles_usable(size_t hd) {
    (void)hd;
    return 0;
}
void att_tiles_scores(float *S, size_t lds, const float *A, size_t lda, const float *Bt, size_t ldb, size_t m,
                      size_t n, size_t hd, size_t diag, float alpha) {
    (void)S, (void)lds, (void)A, (void)lda, (void)Bt, (void)ldb, (void)m, (void)n, (void)hd, (void)diag, (void)alpha;
    abort();
}
void att_tiles_rows_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                          size_t n, size_t hd, size_t diag, int accumulate, const float *row_scale) {
    (void)C, (void)ldc, (void)P, (void)ldp, (void)B, (void)ldb, (void)m, (void)n, (void)hd, (void)diag;
    (void)accumulate, (void)row_scale;
    abort();
}
void att_tiles_cols_times(float *C, size_t ldc, const float *P, size_t ldp, const float *B, size_t ldb, size_t m,
                          size_t n, size_t hd, size_t diag, size_t write_from) {
    (void)C, (void)ldc, (void)P, (void)ldp, (void)B, (void)ldb, (void)m, (void)n, (void)hd, (void)diag;
    (void)write_from;
    abort();
}
void att_tiles_softmax(float *S, size_t lds, size_t m, size_t n, size_t diag, float *row_max, float *row_inv) {
    (void)S, (void)lds, (void)m, (void)n, (void)diag, (void)row_max, (void)row_inv;
    abort();
}
void att_tiles_softmax_backward_recompute(float *D, size_t ldd, float *S, size_t lds, size_t m, size_t n, size_t diag,
                                          const float *row_max, const float *row_inv, const float *G, size_t ldg,
                                          const float *O, size_t ldo, size_t hd, float scale) {
    (void)D, (void)ldd, (void)S, (void)lds, (void)m, (void)n, (void)diag, (void)row_max, (void)row_inv;
    (void)G, (void)ldg, (void)O, (void)ldo, (void)hd, (void)scale;
    abort();
}
void att_tiles_transpose(float *Bt, size_t ldb, const float *X, size_t ldx, size_t n, size_t hd) {
    (void)Bt, (void)ldb, (void)X, (void)ldx, (void)n, (void)hd;
    abort();
}
#endif

