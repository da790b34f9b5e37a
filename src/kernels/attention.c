/* attention.c - causal scaled dot-product attention with grouped K/V heads (see ops.h).
 *
 * softmax(Q K^T / sqrt(hd) + causal mask) V, query row by query row, touching only the t+1
 * visible keys of query t, so the FLOPs the model counts are the FLOPs done here.
 * Speed comes from the layout, not from GEMM calls: each (batch, head) task first transposes its
 * key (or value) head into per-thread scratch, so that the scores of one query against a run of
 * keys are a broadcast-FMA loop over contiguous key columns (vectorised across keys) instead of a
 * dot product per key (a horizontal reduction per key). Mixing values and all the gradient
 * updates are axpy loops over the head dimension. The exponential is ap_expf (fastmath.h).
 * The backward parallelises over (batch, kv head) because all query heads of a group accumulate
 * into the same key/value gradients. The plain version stays in reference.c. */
#include "kernels/fastmath.h"
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>

#define KEY_BLOCK 64

size_t attention_scratch_floats(size_t T, size_t hd) { return hd * T + T + 16; }

/* kt (hd x T) = the head's columns of rows x[t * stride + i], t < n */
static void transpose_head(float *kt, const float *x, size_t stride, size_t n, size_t T, size_t hd) {
    for (size_t t = 0; t < n; t++) {
        const float *row = x + t * stride;
        for (size_t i = 0; i < hd; i++) kt[i * T + t] = row[i];
    }
}

/* s[j] = scale * q . k_j for j < n, with the keys transposed in kt (hd x T) */
static void scores(float *s, const float *q, const float *kt, size_t n, size_t T, size_t hd, float scale) {
    for (size_t j0 = 0; j0 < n; j0 += KEY_BLOCK) {
        size_t m = n - j0 < KEY_BLOCK ? n - j0 : KEY_BLOCK;
        float acc[KEY_BLOCK] = {0};
        for (size_t i = 0; i < hd; i++) {
            const float qi = q[i] * scale, *kr = kt + i * T + j0;
#pragma omp simd
            for (size_t j = 0; j < m; j++) acc[j] += qi * kr[j];
        }
        for (size_t j = 0; j < m; j++) s[j0 + j] = acc[j];
    }
}

static inline void axpy(float *restrict y, float a, const float *restrict x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void attention_forward(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T, size_t H,
                       size_t Hkv, size_t hd) {
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if (B * T * T * hd >= AP_PAR_MIN)
        for (size_t b = 0; b < B; b++)
            for (size_t h = 0; h < H; h++) {
                float *kt = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, hd);
                size_t kh = h / group;
                const float *base = qkv + b * T * stride;
                const float *vbase = base + (H + Hkv + kh) * hd;
                transpose_head(kt, base + (H + kh) * hd, stride, T, T, hd);
                for (size_t t = 0; t < T; t++) {
                    const float *q = base + t * stride + h * hd;
                    float *p = att + ((b * H + h) * T + t) * T;
                    size_t n = t + 1;
                    scores(p, q, kt, n, T, hd, scale);
                    float mx = -INFINITY;
                    for (size_t j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;
                    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                    for (size_t j = 0; j < n; j++) {
                        p[j] = ap_expf(p[j] - mx);
                        sum += p[j];
                    }
                    float inv = 1.0f / sum;
                    float *o = out + (b * T + t) * H * hd + h * hd;
                    for (size_t i = 0; i < hd; i++) o[i] = 0.0f;
                    for (size_t j = 0; j < n; j++) {
                        p[j] *= inv;
                        axpy(o, p[j], vbase + j * stride, hd);
                    }
                }
            }
}

void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                        size_t B, size_t T, size_t H, size_t Hkv, size_t hd) {
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if (B * T * T * hd >= AP_PAR_MIN)
    for (size_t b = 0; b < B; b++)
        for (size_t kh = 0; kh < Hkv; kh++) {
            float *vt = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, hd), *dp = vt + hd * T;
            const float *base = qkv + b * T * stride;
            float *dbase = dqkv + b * T * stride;
            const float *kbase = base + (H + kh) * hd;
            float *dkbase = dbase + (H + kh) * hd, *dvbase = dbase + (H + Hkv + kh) * hd;
            transpose_head(vt, base + (H + Hkv + kh) * hd, stride, T, T, hd);
            for (size_t h = kh * group; h < (kh + 1) * group; h++)
                for (size_t t = 0; t < T; t++) {
                    const float *q = base + t * stride + h * hd;
                    float *dq = dbase + t * stride + h * hd;
                    const float *p = att + ((b * H + h) * T + t) * T;
                    const float *g = dout + (b * T + t) * H * hd + h * hd;
                    size_t n = t + 1;
                    /* dP = dO V^T, then the softmax Jacobian: dS = P * (dP - sum(P * dP)) */
                    scores(dp, g, vt, n, T, hd, 1.0f);
                    float pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
                    for (size_t j = 0; j < n; j++) pdp += p[j] * dp[j];
#pragma omp simd
                    for (size_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - pdp) * scale;
                    for (size_t j = 0; j < n; j++) {
                        axpy(dq, dp[j], kbase + j * stride, hd);
                        axpy(dkbase + j * stride, dp[j], q, hd);
                        axpy(dvbase + j * stride, p[j], g, hd);
                    }
                }
        }
}
