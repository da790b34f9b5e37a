/* norm.c - LayerNorm, RMSNorm and QK-norm (see ops.h).
 *
 * Backward runs in two passes: rows in parallel for the input gradient (each row is
 * independent), then column slices in parallel for the weight gradients, each thread summing
 * its columns over all rows in order. That keeps the result independent of the thread count
 * and needs no scratch memory. */
#include "kernels/fastmath.h"
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float m = ap_sum(x, C) / (float)C;
        float v = ap_sum_sq_dev(x, m, C) / (float)C;
        float r = 1.0f / sqrtf(v + eps);
        float *o = out + n * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + (bias ? bias[c] : 0.0f);
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, size_t N, size_t C) {
#pragma omp parallel for schedule(static) if (N * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *g = dout + n * C;
        float m = mean[n], r = rstd[n];
        /* means of dxhat = g w and of dxhat xhat */
        float sum_g = ap_dot(g, weight, C) / (float)C;
        float sum_gx = ap_dot3_dev(g, weight, x, m, C) * r / (float)C;
        float *dx = dinp + n * C;
        for (size_t c = 0; c < C; c++) {
            float xhat = (x[c] - m) * r;
            dx[c] += r * (g[c] * weight[c] - sum_g - xhat * sum_gx);
        }
    }
#pragma omp parallel if (N * C >= AP_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t c0 = C * id / nt, c1 = C * (id + 1) / nt;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *g = dout + n * C;
            float m = mean[n], r = rstd[n];
            for (size_t c = c0; c < c1; c++) {
                dweight[c] += g[c] * (x[c] - m) * r;
                if (dbias) dbias[c] += g[c];
            }
        }
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, size_t N, size_t C,
                     float eps) {
#pragma omp parallel for schedule(static) if (N * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float r = 1.0f / sqrtf(ap_dot(x, x, C) / (float)C + eps);
        float *o = out + n * C;
        for (size_t c = 0; c < C; c++) o[c] = x[c] * r * weight[c];
        rstd[n] = r;
    }
}

/* One normalised vector: dx += r*w*g - x * r^3 * mean(g*w*x); with set, dx = that (q/k-norm, whose
 * input gradient has no other contribution). */
static inline void rms_row_backward(float *dx, int set, const float *g, const float *x, const float *w, float r,
                                    size_t C) {
    float k = ap_dot3_dev(g, w, x, 0.0f, C) * r * r * r / (float)C;
    if (set)
        for (size_t c = 0; c < C; c++) dx[c] = r * w[c] * g[c] - x[c] * k;
    else
        for (size_t c = 0; c < C; c++) dx[c] += r * w[c] * g[c] - x[c] * k;
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, size_t N, size_t C) {
#pragma omp parallel for schedule(static) if (N * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++)
        rms_row_backward(dinp + n * C, 0, dout + n * C, inp + n * C, weight, rstd[n], C);
#pragma omp parallel if (N * C >= AP_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t c0 = C * id / nt, c1 = C * (id + 1) / nt;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *g = dout + n * C;
            float r = rstd[n];
            for (size_t c = c0; c < c1; c++) dweight[c] += g[c] * x[c] * r;
        }
    }
}

void qknorm_forward(float *out, float *rstd, const float *inp, const float *qw, const float *kw, size_t N,
                    size_t H, size_t Hkv, size_t hd, float eps) {
    size_t stride = (H + 2 * Hkv) * hd, nn = H + Hkv;
#pragma omp parallel for schedule(static) if (N * stride >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * stride;
        float *o = out + n * stride;
        for (size_t h = 0; h < nn; h++) {
            const float *xv = x + h * hd, *w = h < H ? qw : kw;
            float r = 1.0f / sqrtf(ap_dot(xv, xv, hd) / (float)hd + eps);
            for (size_t i = 0; i < hd; i++) o[h * hd + i] = xv[i] * r * w[i];
            rstd[n * nn + h] = r;
        }
        for (size_t i = nn * hd; i < stride; i++) o[i] = x[i];
    }
}

/* One row's contribution to gain entries [i0, i1): dw[i] += sum over heads [h0, h1) of
 * g * x * rstd, each entry's sum taken in head order. The heads sum into a vector of entries (the
 * loop over entries innermost), not into one entry at a time (a strided scalar chain that kept the
 * gain gradient of a speedrun at 2.7% of a step). */
static void qk_gain_rows(float *dw, const float *g, const float *x, const float *r, size_t h0, size_t h1, size_t i0,
                         size_t i1, size_t hd) {
    enum { CHUNK = 64 };
    for (size_t c = i0; c < i1; c += CHUNK) {
        size_t len = i1 - c < CHUNK ? i1 - c : CHUNK;
        float acc[CHUNK] = {0};
        for (size_t h = h0; h < h1; h++) {
            const float *gh = g + h * hd + c, *xh = x + h * hd + c;
            float rh = r[h];
#pragma omp simd
            for (size_t i = 0; i < len; i++) acc[i] += gh[i] * xh[i] * rh;
        }
#pragma omp simd
        for (size_t i = 0; i < len; i++) dw[c + i] += acc[i];
    }
}

void qknorm_backward(float *dinp, float *dqw, float *dkw, const float *dout, const float *inp, const float *qw,
                     const float *kw, const float *rstd, size_t N, size_t H, size_t Hkv, size_t hd) {
    size_t stride = (H + 2 * Hkv) * hd, nn = H + Hkv;
#pragma omp parallel for schedule(static) if (N * stride >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * stride, *g = dout + n * stride;
        float *dx = dinp + n * stride;
        for (size_t h = 0; h < nn; h++)
            rms_row_backward(dx + h * hd, 1, g + h * hd, x + h * hd, h < H ? qw : kw, rstd[n * nn + h], hd);
        for (size_t i = nn * hd; i < stride; i++) dx[i] = g[i];
    }
    /* weight gradients: thread slices over the 2*hd (query, key) gain entries */
#pragma omp parallel if (N * stride >= AP_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t j0 = 2 * hd * id / nt, j1 = 2 * hd * (id + 1) / nt;
        size_t q0 = j0 < hd ? j0 : hd, q1 = j1 < hd ? j1 : hd, k0 = j0 > hd ? j0 - hd : 0, k1 = j1 > hd ? j1 - hd : 0;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * stride, *g = dout + n * stride, *r = rstd + n * nn;
            qk_gain_rows(dqw, g, x, r, 0, H, q0, q1, hd);
            qk_gain_rows(dkw, g, x, r, H, H + Hkv, k0, k1, hd);
        }
    }
}
