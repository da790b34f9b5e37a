/* activation.c - elementwise activations, gated units and the residual add (see ops.h). */
#include "kernels/fastmath.h"
#include "kernels/ops.h"

#include <math.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* The tanh form written with one sigmoid: 0.5 (1 + tanh u) = sigmoid(2u), and sech^2 u =
 * 4 s (1 - s) with s = sigmoid(2u). Same function, half the arithmetic of calling tanh (whose
 * series branch near 0 guards a cancellation that x * s does not have). */
static inline float gelu_value(float x) {
    float u = GELU_K * (x + 0.044715f * x * x * x);
    return x * ap_sigmoidf(2.0f * u);
}

/* The value and (in *grad) the derivative on one sigmoid: the gated backward needs both. */
static inline float gelu_value_grad(float x, float *grad) {
    float u = GELU_K * (x + 0.044715f * x * x * x);
    float s = ap_sigmoidf(2.0f * u);
    *grad = s + 2.0f * x * s * (1.0f - s) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return x * s;
}

static inline float gelu_grad(float x) {
    float grad;
    gelu_value_grad(x, &grad);
    return grad;
}

static inline float silu_value(float x) { return x * ap_sigmoidf(x); }

static inline float silu_value_grad(float x, float *grad) {
    float s = ap_sigmoidf(x);
    *grad = s * (1.0f + x * (1.0f - s));
    return x * s;
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = gelu_value(inp[i]);
}

/* dinp[i] = expr (GRAD_SET) or dinp[i] += expr (GRAD_ADD) over i < n, the mode tested once outside
 * the loop: the SET loop never reads dinp, so the caller needs no zeroing pass first (zeroing was
 * 1-2% of a study's transformer runs). */
#define EW_GRAD_LOOP(dinp, mode, n, expr)                                                                            \
    do {                                                                                                             \
        if ((mode) == GRAD_SET) {                                                                                    \
            _Pragma("omp parallel for simd schedule(static) if (n >= AP_PAR_MIN)")                                  \
            for (size_t i = 0; i < (n); i++) (dinp)[i] = (expr);                                                     \
        } else {                                                                                                     \
            _Pragma("omp parallel for simd schedule(static) if (n >= AP_PAR_MIN)")                                  \
            for (size_t i = 0; i < (n); i++) (dinp)[i] += (expr);                                                    \
        }                                                                                                            \
    } while (0)

void gelu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n) {
    EW_GRAD_LOOP(dinp, mode, n, dout[i] * gelu_grad(inp[i]));
}

void relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n) {
    EW_GRAD_LOOP(dinp, mode, n, inp[i] > 0.0f ? dout[i] : 0.0f);
}

void relu2_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] * inp[i] : 0.0f;
}

void relu2_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n) {
    EW_GRAD_LOOP(dinp, mode, n, inp[i] > 0.0f ? 2.0f * inp[i] * dout[i] : 0.0f);
}

/* Gated units share one loop; `gelu` picks the gate's nonlinearity (SiLU otherwise). */
static void gated_forward(float *out, const float *inp, size_t N, size_t F, int gelu) {
#pragma omp parallel for schedule(static) if (N * F >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *gate = inp + n * 2 * F, *up = gate + F;
        float *o = out + n * F;
        if (gelu) {
#pragma omp simd
            for (size_t j = 0; j < F; j++) o[j] = gelu_value(gate[j]) * up[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < F; j++) o[j] = silu_value(gate[j]) * up[j];
        }
    }
}

/* One row of a gated unit's backward; inlined with constant gelu and set, so each of the four
 * loops is compiled on its own and the SET ones never read the gradient. */
static inline __attribute__((always_inline)) void gated_backward_row(float *dgate, float *dup, const float *g,
                                                                     const float *gate, const float *up, size_t F,
                                                                     int gelu, int set) {
#pragma omp simd
    for (size_t j = 0; j < F; j++) {
        float d, v = gelu ? gelu_value_grad(gate[j], &d) : silu_value_grad(gate[j], &d);
        float dg = g[j] * up[j] * d, du = g[j] * v;
        dgate[j] = set ? dg : dgate[j] + dg;
        dup[j] = set ? du : dup[j] + du;
    }
}

static void gated_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N, size_t F,
                           int gelu) {
    int set = mode == GRAD_SET;
#pragma omp parallel for schedule(static) if (N * F >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *gate = inp + n * 2 * F, *up = gate + F, *g = dout + n * F;
        float *dgate = dinp + n * 2 * F, *dup = dgate + F;
        if (gelu && set) gated_backward_row(dgate, dup, g, gate, up, F, 1, 1);
        else if (gelu) gated_backward_row(dgate, dup, g, gate, up, F, 1, 0);
        else if (set) gated_backward_row(dgate, dup, g, gate, up, F, 0, 1);
        else gated_backward_row(dgate, dup, g, gate, up, F, 0, 0);
    }
}

void swiglu_forward(float *out, const float *inp, size_t N, size_t F) { gated_forward(out, inp, N, F, 0); }
void swiglu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N, size_t F) {
    gated_backward(dinp, mode, dout, inp, N, F, 0);
}
void geglu_forward(float *out, const float *inp, size_t N, size_t F) { gated_forward(out, inp, N, F, 1); }
void geglu_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t N, size_t F) {
    gated_backward(dinp, mode, dout, inp, N, F, 1);
}

void residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(float *da, float *db, const float *dout, size_t n) {
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

void softcap_forward(float *out, const float *inp, size_t n, float cap) {
#pragma omp parallel for schedule(static) if (n >= AP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = cap * ap_tanhf(inp[i] / cap);
}

static inline float softcap_grad(float x, float cap) {
    float th = ap_tanhf(x / cap);
    return 1.0f - th * th;
}

void softcap_backward(float *dinp, GradWrite mode, const float *dout, const float *inp, size_t n, float cap) {
    EW_GRAD_LOOP(dinp, mode, n, dout[i] * softcap_grad(inp[i], cap));
}
