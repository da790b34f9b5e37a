/* fastmath.h - vectorisable exp, sigmoid and tanh for the hot loops (attention softmax, SiLU,
 * GELU's tanh, LSTM gates).
 *
 * libm's expf is a call per element that GCC will not vectorise without -ffast-math. These are
 * branch-free arithmetic the compiler vectorises inside `#pragma omp simd` loops.
 * exp: e^x = 2^n e^r with n = round(x log2 e) and r = x - n ln2 in [-ln2/2, ln2/2] (Cody-Waite:
 * ln2 split in a high part with trailing zero bits and a low part, so n*ln2_hi is exact), e^r
 * from its Taylor series to degree 7 (truncation 5e-9), 2^n by writing the exponent bits.
 * Relative error about 2 ulp over the whole range. Inputs are clamped to [-87, 88] so 2^n stays a
 * normal float; e^-87 is ~1.6e-38, which every caller treats as zero.
 * tanh: 2 sigmoid(2x) - 1 loses relative accuracy near 0 by cancellation, so |x| < 0.3 uses its
 * odd Taylor series to x^11 (truncation < 1e-8 relative).
 * Deterministic: the same bits for the same input on any thread count. */
#ifndef AP_FASTMATH_H
#define AP_FASTMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float ap_expf(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693145751953125f; /* ln2_hi: 16 significant bits, n * ln2_hi is exact */
    r = r - n * 1.428606765330187e-6f;     /* ln2_lo */
    float p = 1.98412698e-4f;              /* 1/7! */
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale); /* a register move; a union would block vectorisation */
    return p * scale;
}

static inline float ap_sigmoidf(float x) { return 1.0f / (1.0f + ap_expf(-x)); }

static inline float ap_tanhf(float x) {
    float x2 = x * x;
    float small = x * (1.0f + x2 * (-3.33333333e-1f + x2 * (1.33333333e-1f + x2 * (-5.39682540e-2f +
                  x2 * (2.18694885e-2f + x2 * -8.86323552e-3f)))));
    float large = 2.0f / (1.0f + ap_expf(-2.0f * x)) - 1.0f;
    return x2 < 0.09f ? small : large;
}

/* Sums in a fixed order whatever the vector width: AP_LANES running sums over whole chunks, added
 * lane by lane, then the tail in order. GCC vectorises no plain float sum (that would reorder it),
 * and at the rows the models have (48-512 floats) a scalar chain of dependent adds was most of a
 * norm's time. */
#define AP_LANES 16

static inline float ap_lanes_total(const float *lane) {
    float s = 0.0f;
    for (int k = 0; k < AP_LANES; k++) s += lane[k];
    return s;
}

/* Defines `static inline float NAME PARAMS` returning the sum over J in [0, n) of TERM, an
 * expression in J, in the order above (one skeleton for the four sums below). */
#define AP_DEFINE_LANE_SUM(NAME, PARAMS, TERM)                                                                  \
    static inline float NAME PARAMS {                                                                          \
        float l[AP_LANES] = {0};                                                                               \
        size_t full = n / AP_LANES * AP_LANES;                                                                 \
        for (size_t J0 = 0; J0 < full; J0 += AP_LANES)                                                         \
            _Pragma("omp simd") for (size_t k = 0; k < AP_LANES; k++) {                                        \
                size_t J = J0 + k;                                                                             \
                l[k] += TERM;                                                                                  \
            }                                                                                                  \
        float s = ap_lanes_total(l);                                                                           \
        for (size_t J = full; J < n; J++) s += TERM;                                                           \
        return s;                                                                                              \
    }

/* sum of x */
AP_DEFINE_LANE_SUM(ap_sum, (const float *x, size_t n), x[J])
/* sum of (x - m)^2 */
AP_DEFINE_LANE_SUM(ap_sum_sq_dev, (const float *x, float m, size_t n), (x[J] - m) * (x[J] - m))
/* sum of x * y */
AP_DEFINE_LANE_SUM(ap_dot, (const float *x, const float *y, size_t n), x[J] * y[J])
/* sum of g * w * (x - m) (m = 0: a three-way dot product) */
AP_DEFINE_LANE_SUM(ap_dot3_dev, (const float *g, const float *w, const float *x, float m, size_t n),
                   g[J] * w[J] * (x[J] - m))

#endif
