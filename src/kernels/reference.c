/* reference.c - simple, slow versions of the optimised kernels, kept forever.
 *
 * Each function here computes the same thing as its fast namesake in the most direct way; the
 * tests check fast against reference on random inputs. When a fast kernel changes, these do not. */
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>

/* Causal attention, row by row: scores by dot products, softmax with libm's expf, values mixed by
 * axpy. (The first version of attention.c.) */
static inline float dot(const float *a, const float *b, size_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void attention_forward_ref(float *out, float *att, float *scratch, const float *qkv, size_t B, size_t T,
                           size_t H, size_t Hkv, size_t hd, size_t window, const float *slopes) {
    (void)scratch; /* same arguments as attention_forward */
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / group;
            const float *base = qkv + b * T * stride;
            const float *kbase = base + (H + kh) * hd, *vbase = base + (H + Hkv + kh) * hd;
            for (size_t t = 0; t < T; t++) {
                const float *q = base + t * stride + h * hd;
                float *p = att + ((b * H + h) * T + t) * T;
                float mx = -INFINITY;
                size_t lo = window && t + 1 > window ? t + 1 - window : 0; /* a sliding window's first key */
                for (size_t t2 = 0; t2 < lo; t2++) p[t2] = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    float s = scale * dot(q, kbase + t2 * stride, hd) - (slopes ? slopes[h] * (float)(t - t2) : 0.0f);
                    p[t2] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    p[t2] = expf(p[t2] - mx);
                    sum += p[t2];
                }
                float inv = 1.0f / sum;
                for (size_t t2 = t + 1; t2 < T; t2++) p[t2] = 0.0f; /* the contract in ops.h */
                float *o = out + (b * T + t) * H * hd + h * hd;
                for (size_t i = 0; i < hd; i++) o[i] = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    p[t2] *= inv;
                    axpy(o, p[t2], vbase + t2 * stride, hd);
                }
            }
        }
}

void attention_backward_ref(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                        size_t B, size_t T, size_t H, size_t Hkv, size_t hd) {
    size_t stride = (H + 2 * Hkv) * hd, group = H / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t kh = 0; kh < Hkv; kh++) {
            float *dp = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, hd);
            const float *base = qkv + b * T * stride;
            float *dbase = dqkv + b * T * stride;
            const float *kbase = base + (H + kh) * hd, *vbase = base + (H + Hkv + kh) * hd;
            float *dkbase = dbase + (H + kh) * hd, *dvbase = dbase + (H + Hkv + kh) * hd;
            for (size_t h = kh * group; h < (kh + 1) * group; h++)
                for (size_t t = 0; t < T; t++) {
                    const float *q = base + t * stride + h * hd;
                    float *dq = dbase + t * stride + h * hd;
                    const float *p = att + ((b * H + h) * T + t) * T;
                    const float *g = dout + (b * T + t) * H * hd + h * hd;
                    /* dP = dO V^T, then the softmax Jacobian: dS = P * (dP - sum(P * dP)) */
                    float pdp = 0.0f;
                    for (size_t t2 = 0; t2 <= t; t2++) {
                        dp[t2] = dot(g, vbase + t2 * stride, hd);
                        pdp += p[t2] * dp[t2];
                    }
                    for (size_t t2 = 0; t2 <= t; t2++) {
                        float ds = p[t2] * (dp[t2] - pdp) * scale;
                        axpy(dq, ds, kbase + t2 * stride, hd);
                        axpy(dkbase + t2 * stride, ds, q, hd);
                        axpy(dvbase + t2 * stride, p[t2], g, hd);
                    }
                }
        }
}
