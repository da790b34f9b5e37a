/* attention.c - causal scaled dot-product attention with grouped K/V heads (see ops.h).
 *
 * softmax(Q K^T / sqrt(hd) + causal mask) V in blocks of ATT_QB query rows, so the work is GEMMs:
 * for rows [i0, i1) only the keys [0, i1) are visible, so S = Q[i0:i1] K[0:i1]^T, a causal row
 * softmax written in place in att (zeros right of the diagonal inside the block), then
 * O = P V[0:i1]. The wasted upper triangle of each diagonal block costs ATT_QB/2 keys per row
 * (about 25% extra at T = 256, 12% at T = 512); the model still counts the causal FLOPs only.
 * Each (batch, head) task runs its products inside our OpenMP region, where both GEMM libraries
 * stay single-threaded, so there is no oversubscription. Q, K, V are read in place through the
 * leading dimensions. Heads 16-64 wide (the studies' 16 and 32) run their products on AVX-512
 * register tiles instead (attention_tiles.h): a library GEMM of 64 x keys x 16 spends most of its
 * time outside its inner loop, and the tiles also stop each group of rows at its last visible key,
 * so the diagonal blocks' upper triangles cost almost nothing. They read the keys (forward) or
 * values (backward) transposed, one copy per head in the thread's scratch. Without a window the
 * tiles keep no probabilities in att: the scores and probabilities of a block live in the thread's
 * scratch, att keeps each row's maximum and 1 / sum, and the backward computes them again
 * (keeps_row_stats below). The backward parallelises over (batch, kv head) because all query heads
 * of a group accumulate into the same key/value gradients. The plain row-by-row version stays in
 * reference.c and the tests hold the two together. */
#include "core/parallel.h"
#include "kernels/attention_tiles.h"
#include "kernels/fastmath.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define ATT_QB 64

/* Rows of the transposed keys (forward) or values (backward) the tiles read: whole vectors. */
static size_t tiles_ld(size_t T) { return (T + 15) & ~(size_t)15; }

/* Per thread: a block of ATT_QB x T scores or gradients (hd x T when the head is wider), a second
 * one (the backward's recomputed probabilities), then a head's keys and its values transposed for
 * the tiles (hd x tiles_ld(T) each). */
static size_t block_floats(size_t T, size_t hd) { return (hd > ATT_QB ? hd : ATT_QB) * T; }
size_t attention_scratch_floats(size_t T, size_t hd) { return 2 * block_floats(T, hd) + 2 * hd * tiles_ld(T) + 16; }

typedef struct {
    float *block, *probs, *keys_t, *values_t;
} AttnScratch;

static AttnScratch thread_scratch(float *scratch, size_t T, size_t hd) {
    float *base = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, hd);
    size_t nb = block_floats(T, hd), nt = hd * tiles_ld(T);
    return (AttnScratch){base, base + nb, base + 2 * nb, base + 2 * nb + nt};
}

/* Where the tiles run without a window, the forward keeps no probabilities: each head's region of
 * att holds its rows' maximum scores (T floats) then their 1 / sum (T floats), and the backward
 * computes the scores and probabilities again, bit for bit, a block at a time in the thread's
 * scratch. Storing them cost more than recomputing: a step wrote and read back L * B * H * T^2 / 2
 * floats, and the backward's first pass over each block waited on memory (docs/BENCH.md). */
static int keeps_row_stats(int tiles, size_t W) { return tiles && !W; }

/* The tiles' products count as matrix-product time, as the library's do (section clocks). */
#define TIMED_AS_GEMM(call)                                                                                            \
    do {                                                                                                               \
        int timed_ = section_clock_timed();                                                                            \
        double t0_ = timed_ ? time_now() : 0.0;                                                                        \
        call;                                                                                                          \
        if (timed_) section_clock_add(SECTION_GEMM, time_now() - t0_);                                                 \
    } while (0)

/* Row r of s sees keys [0, i0 + r]. Rows run in chunks of 16 keys with per-lane maxima and sums,
 * masking the keys past the row's last, and one horizontal step per row: GCC's alignment peeling
 * and scalar remainder loops (an ap_expf per key) took most of the time at these row lengths. */
#define SM_W 16
static void softmax_rows_causal(float *s, size_t i0, size_t rows, size_t cols, size_t T) {
    for (size_t r = 0; r < rows; r++) {
        float *p = s + r * T;
        size_t vis = i0 + r + 1, nv = (vis + SM_W - 1) / SM_W * SM_W;
        if (nv > cols) nv = cols;
        size_t full = nv / SM_W * SM_W;
        float mv[SM_W], sv[SM_W];
        for (size_t k = 0; k < SM_W; k++) mv[k] = -INFINITY, sv[k] = 0.0f;
        for (size_t j0 = 0; j0 < full; j0 += SM_W)
#pragma omp simd
            for (size_t k = 0; k < SM_W; k++) {
                float x = j0 + k < vis ? p[j0 + k] : -INFINITY;
                mv[k] = x > mv[k] ? x : mv[k];
            }
        float mx = -INFINITY;
        for (size_t k = 0; k < SM_W; k++) mx = mv[k] > mx ? mv[k] : mx;
        for (size_t j = full; j < nv && j < vis; j++) mx = p[j] > mx ? p[j] : mx;
        for (size_t j0 = 0; j0 < full; j0 += SM_W)
#pragma omp simd
            for (size_t k = 0; k < SM_W; k++) {
                float e = j0 + k < vis ? ap_expf(p[j0 + k] - mx) : 0.0f;
                p[j0 + k] = e;
                sv[k] += e;
            }
        float sum = 0.0f;
        for (size_t k = 0; k < SM_W; k++) sum += sv[k];
        for (size_t j = full; j < nv; j++) {
            p[j] = j < vis ? ap_expf(p[j] - mx) : 0.0f;
            sum += p[j];
        }
        float inv = 1.0f / sum;
        for (size_t j0 = 0; j0 < full; j0 += SM_W)
#pragma omp simd
            for (size_t k = 0; k < SM_W; k++) p[j0 + k] *= inv;
        for (size_t j = full; j < nv; j++) p[j] *= inv;
        for (size_t j = nv; j < cols; j++) p[j] = 0.0f;
    }
}

/* The first key row i sees: with a sliding window of W keys, i + 1 - W (0 without one). */
static inline size_t window_start(size_t i, size_t W) { return W && i + 1 > W ? i + 1 - W : 0; }

/* Sliding-window rows: row r sees keys [window_start(i0 + r), i0 + r]; zeros elsewhere up to cols. */
static void softmax_rows_window(float *s, size_t i0, size_t rows, size_t cols, size_t T, size_t W) {
    for (size_t r = 0; r < rows; r++) {
        float *p = s + r * T;
        size_t lo = window_start(i0 + r, W), hi = i0 + r + 1;
        float mx = -INFINITY, sum = 0.0f;
        for (size_t j = lo; j < hi; j++) mx = p[j] > mx ? p[j] : mx;
        for (size_t j = lo; j < hi; j++) sum += p[j] = ap_expf(p[j] - mx);
        float inv = 1.0f / sum;
        for (size_t j = 0; j < lo; j++) p[j] = 0.0f;
        for (size_t j = lo; j < hi; j++) p[j] *= inv;
        for (size_t j = hi; j < cols; j++) p[j] = 0.0f;
    }
}

void alibi_slopes(float *slopes, size_t H) {
    for (size_t h = 0; h < H; h++) slopes[h] = (float)pow(2.0, -8.0 * (double)(h + 1) / (double)H);
}

/* ALiBi: the visible scores of rows i0.. (keys k0..) get -slope * distance. */
static void alibi_bias(float *s, float slope, size_t i0, size_t rows, size_t k0, size_t T) {
    for (size_t r = 0; r < rows; r++) {
        float *p = s + r * T;
        for (size_t j = k0; j <= i0 + r; j++) p[j] -= slope * (float)(i0 + r - j);
    }
}

static void attention_forward_untimed(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T,
                                      size_t H, size_t Hkv, size_t hd, size_t W, const float *slopes) {
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv, ldt = tiles_ld(T);
    float scale = 1.0f / sqrtf((float)hd);
    int tiles = att_tiles_usable(hd), stats = keeps_row_stats(tiles, W);
#pragma omp parallel for collapse(2) schedule(static) if (B * T * T * hd >= AP_PAR_MIN)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / group;
            const float *base = qkv + b * T * stride;
            const float *k = base + (H + kh) * hd, *v = base + (H + Hkv + kh) * hd;
            float *a = att + (b * H + h) * T * T, *row_max = stats ? a : NULL, *row_inv = stats ? a + T : NULL;
            AttnScratch sc = thread_scratch(scratch, T, hd);
            float *kt = sc.keys_t;
            if (tiles) att_tiles_transpose(kt, ldt, k, stride, T, hd);
            for (size_t i0 = 0; i0 < T; i0 += ATT_QB) {
                size_t m = T - i0 < ATT_QB ? T - i0 : ATT_QB, n = i0 + m, k0 = window_start(i0, W), nk = n - k0;
                float *s = stats ? sc.block : a + i0 * T, *o = out + (b * T + i0) * H * hd + h * hd;
                const float *q = base + i0 * stride + h * hd;
                /* keys [k0, n): the block's first row sees the earliest; its row r the keys to i0 + r */
                if (tiles)
                    TIMED_AS_GEMM(att_tiles_scores(s + k0, T, q, stride, kt + k0, ldt, m, nk, hd, i0 - k0, scale));
                else
                    gemm_sgemm(0, 1, m, nk, hd, scale, q, stride, k + k0 * stride, stride, 0.0f, s + k0, T);
                if (slopes) alibi_bias(s, slopes[h], i0, m, k0, T);
                if (W)
                    softmax_rows_window(s, i0, m, n, T, W);
                else if (tiles)
                    att_tiles_softmax(s, T, m, n, i0, row_max + i0, row_inv + i0); /* tiles, no window: stats */
                else
                    softmax_rows_causal(s, i0, m, n, T);
                if (tiles)
                    TIMED_AS_GEMM(att_tiles_rows_times(o, H * hd, s + k0, T, v + k0 * stride, stride, m, nk, hd,
                                                       i0 - k0, 0, row_inv ? row_inv + i0 : NULL));
                else
                    gemm_sgemm(0, 0, m, hd, nk, 1.0f, s + k0, T, v + k0 * stride, stride, 0.0f, o, H * hd);
            }
        }
}

/* The last row of attention_forward against a cache: per key/value head, the group's query rows
 * (contiguous heads) make one small GEMM, scaled as in the forward, and each row gets the same
 * causal softmax with every key visible. */
void attention_decode_forward(float *out, float *att, const float *q, const float *kc, const float *vc, size_t T,
                              size_t H, size_t Hkv, size_t hd, size_t ld, const float *slopes) {
    size_t group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (H * T * hd >= AP_PAR_MIN)
    for (size_t kh = 0; kh < Hkv; kh++) {
        float *s = att + kh * group * T; /* (group, T) */
        gemm_sgemm(0, 1, group, T, hd, scale, q + kh * group * hd, hd, kc + kh * hd, ld, 0.0f, s, T);
        for (size_t r = 0; slopes && r < group; r++) alibi_bias(s + r * T, slopes[kh * group + r], T - 1, 1, 0, T);
        for (size_t r = 0; r < group; r++) softmax_rows_causal(s + r * T, T - 1, 1, T, T);
        gemm_sgemm(0, 0, group, hd, T, 1.0f, s, T, vc + kh * hd, ld, 0.0f, out + kh * group * hd, hd);
    }
}

static void attention_backward_untimed(float *dqkv, float *scratch, const float *dout, const float *qkv,
                                       const float *out, const float *att, size_t B, size_t T, size_t H,
                                       size_t Hkv, size_t hd, size_t W, const float *slopes) {
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv, ldt = tiles_ld(T);
    float scale = 1.0f / sqrtf((float)hd);
    int tiles = att_tiles_usable(hd), stats = keeps_row_stats(tiles, W);
#pragma omp parallel for collapse(2) schedule(static) if (B * T * T * hd >= AP_PAR_MIN)
    for (size_t b = 0; b < B; b++)
        for (size_t kh = 0; kh < Hkv; kh++) {
            AttnScratch sc = thread_scratch(scratch, T, hd);
            float *ds = sc.block, *vt = sc.values_t;
            const float *base = qkv + b * T * stride;
            float *dbase = dqkv + b * T * stride;
            const float *k = base + (H + kh) * hd, *v = base + (H + Hkv + kh) * hd;
            float *dk = dbase + (H + kh) * hd, *dv = dbase + (H + Hkv + kh) * hd;
            if (tiles) att_tiles_transpose(vt, ldt, v, stride, T, hd);
            if (stats) att_tiles_transpose(sc.keys_t, ldt, k, stride, T, hd);
            /* dqkv is written over (ops.h): each block of queries writes its own rows of dQ; the tiles
             * write each key's dK and dV rows at their first contribution (the group's first head,
             * the block holding that key's own query), the library's products add onto zeros */
            for (size_t t = 0; !tiles && t < T; t++) {
                memset(dk + t * stride, 0, hd * sizeof(float));
                memset(dv + t * stride, 0, hd * sizeof(float));
            }
            for (size_t h = kh * group; h < (kh + 1) * group; h++)
                for (size_t i0 = 0; i0 < T; i0 += ATT_QB) {
                    size_t m = T - i0 < ATT_QB ? T - i0 : ATT_QB, n = i0 + m, k0 = window_start(i0, W), nk = n - k0;
                    const float *p = att + ((b * H + h) * T + i0) * T;
                    const float *g = dout + (b * T + i0) * H * hd + h * hd, *q = base + i0 * stride + h * hd;
                    if (stats) { /* the forward's scores again (k0 = 0 without a window), and dP = dO V^T */
                        const float *a = att + (b * H + h) * T * T;
                        TIMED_AS_GEMM(att_tiles_scores(sc.probs, T, q, stride, sc.keys_t, ldt, m, n, hd, i0, scale);
                                      att_tiles_scores(ds, n, g, H * hd, vt, ldt, m, n, hd, i0, 1.0f));
                        if (slopes) alibi_bias(sc.probs, slopes[h], i0, m, 0, T);
                        att_tiles_softmax_backward_recompute(ds, n, sc.probs, T, m, n, i0, a + i0, a + T + i0, g,
                                                             H * hd, out + (b * T + i0) * H * hd + h * hd, H * hd,
                                                             hd, scale);
                        p = sc.probs;
                    } else if (tiles) /* dP = dO V^T (keys [k0, n)) */
                        TIMED_AS_GEMM(att_tiles_scores(ds, nk, g, H * hd, vt + k0, ldt, m, nk, hd, i0 - k0, 1.0f));
                    else
                        gemm_sgemm(0, 1, m, nk, hd, 1.0f, g, H * hd, v + k0 * stride, stride, 0.0f, ds, nk);
                    /* dS = P * (dP - sum(P * dP)) * scale on the visible keys, 0 elsewhere */
                    for (size_t r = 0; W && r < m; r++) {
                        const float *pr = p + r * T + k0;
                        float *dr = ds + r * nk;
                        size_t lo = window_start(i0 + r, W) - k0, hi = i0 + r + 1 - k0;
                        float pdp = 0.0f;
                        for (size_t j = lo; j < hi; j++) pdp += pr[j] * dr[j];
                        for (size_t j = 0; j < nk; j++) dr[j] = j >= lo && j < hi ? pr[j] * (dr[j] - pdp) * scale : 0.0f;
                    }
                    for (size_t r = 0; !W && !tiles && r < m; r++) {
                        const float *pr = p + r * T;
                        float *dr = ds + r * n;
                        size_t vis = i0 + r + 1, nv = (vis + 15) & ~(size_t)15; /* whole vectors, as in the forward */
                        if (nv > n) nv = n;
                        float pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
                        for (size_t j = 0; j < nv; j++) pdp += j < vis ? pr[j] * dr[j] : 0.0f;
#pragma omp simd
                        for (size_t j = 0; j < nv; j++) dr[j] = j < vis ? pr[j] * (dr[j] - pdp) * scale : 0.0f;
                        for (size_t j = nv; j < n; j++) dr[j] = 0.0f;
                    }
                    /* dQ = dS K; dK += dS^T Q; dV += P^T dO (P is 0 above the diagonal: see forward) */
                    float *dq = dbase + i0 * stride + h * hd;
                    if (tiles) {
                        size_t diag = i0 - k0, new_keys = h == kh * group ? diag : nk; /* keys [i0, n) */
                        TIMED_AS_GEMM(
                            att_tiles_rows_times(dq, stride, ds, nk, k + k0 * stride, stride, m, nk, hd, diag, 0, NULL);
                            att_tiles_cols_times(dk + k0 * stride, stride, ds, nk, q, stride, m, nk, hd, diag, new_keys);
                            att_tiles_cols_times(dv + k0 * stride, stride, p + k0, T, g, H * hd, m, nk, hd, diag,
                                                 new_keys));
                        continue;
                    }
                    gemm_sgemm(0, 0, m, hd, nk, 1.0f, ds, nk, k + k0 * stride, stride, 0.0f, dq, stride);
                    gemm_sgemm(1, 0, nk, hd, m, 1.0f, ds, nk, q, stride, 1.0f, dk + k0 * stride, stride);
                    gemm_sgemm(1, 0, nk, hd, m, 1.0f, p + k0, T, g, H * hd, 1.0f, dv + k0 * stride, stride);
                }
        }
}

/* The section clocks (core/parallel.h): the whole kernel, and its products apart. */
static void attention_clock(double t0, double g0) {
    section_clock_add(SECTION_ATTENTION, time_now() - t0);
    section_clock_add(SECTION_ATTENTION_GEMM, section_clock_read(SECTION_GEMM) - g0);
}

void attention_forward(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T, size_t H,
                       size_t Hkv, size_t hd, size_t window, const float *slopes) {
    int timed = section_clock_timed();
    double t0 = timed ? time_now() : 0.0, g0 = timed ? section_clock_read(SECTION_GEMM) : 0.0;
    attention_forward_untimed(out, att, scratch, qkv, B, T, H, Hkv, hd, window, slopes);
    if (timed) attention_clock(t0, g0);
}

void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                        const float *att, size_t B, size_t T, size_t H, size_t Hkv, size_t hd, size_t window,
                        const float *slopes) {
    int timed = section_clock_timed();
    double t0 = timed ? time_now() : 0.0, g0 = timed ? section_clock_read(SECTION_GEMM) : 0.0;
    attention_backward_untimed(dqkv, scratch, dout, qkv, out, att, B, T, H, Hkv, hd, window, slopes);
    if (timed) attention_clock(t0, g0);
}
