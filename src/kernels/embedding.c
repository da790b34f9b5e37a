/* embedding.c - token embeddings and absolute/rotary positions (see ops.h). */
#include "kernels/ops.h"

#include <math.h>
#include <omp.h>

void embedding_forward(float *out, const int *tokens, const float *wte, size_t N, size_t C, float scale) {
#pragma omp parallel for schedule(static) if (N * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *w = wte + (size_t)tokens[n] * C;
        float *o = out + n * C;
        for (size_t c = 0; c < C; c++) o[c] = scale * w[c];
    }
}

/* Rows of dwte are hit by repeated tokens, so threads split the channels instead of the tokens:
 * each thread walks every token in order over its own column slice (no races, fixed order). */
void embedding_backward(float *dwte, const float *dout, const int *tokens, size_t N, size_t C, float scale) {
#pragma omp parallel if (N * C >= AP_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t c0 = C * id / nt, c1 = C * (id + 1) / nt;
        for (size_t n = 0; n < N; n++) {
            float *dw = dwte + (size_t)tokens[n] * C;
            const float *d = dout + n * C;
            for (size_t c = c0; c < c1; c++) dw[c] += scale * d[c];
        }
    }
}

void posemb_learned_forward(float *x, const float *wpe, size_t B, size_t T, size_t C) {
#pragma omp parallel for collapse(2) schedule(static) if (B * T * C >= AP_PAR_MIN)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float *o = x + (b * T + t) * C;
            const float *w = wpe + t * C;
            for (size_t c = 0; c < C; c++) o[c] += w[c];
        }
}

void posemb_learned_backward(float *dwpe, const float *dx, size_t B, size_t T, size_t C) {
#pragma omp parallel for schedule(static) if (T * C >= AP_PAR_MIN)
    for (size_t t = 0; t < T; t++) {
        float *dw = dwpe + t * C;
        for (size_t b = 0; b < B; b++) {
            const float *d = dx + (b * T + t) * C;
            for (size_t c = 0; c < C; c++) dw[c] += d[c];
        }
    }
}

void posemb_sinusoidal_forward(float *x, size_t B, size_t T, size_t C, size_t pos0) {
#pragma omp parallel for schedule(static) if (T * C >= AP_PAR_MIN)
    for (size_t t = 0; t < T; t++) {
        double pos = (double)(t + pos0);
        for (size_t i = 0; i < C; i += 2) {
            double angle = pos * pow(10000.0, -(double)i / (double)C);
            float s = (float)sin(angle), co = (float)cos(angle);
            for (size_t b = 0; b < B; b++) {
                float *o = x + (b * T + t) * C;
                o[i] += s;
                if (i + 1 < C) o[i + 1] += co;
            }
        }
    }
}

void rope_tables(float *cos_tab, float *sin_tab, size_t T, size_t hd, float base, const RopeScaling *scaling) {
    size_t half = hd / 2;
    int kind = scaling && scaling->factor > 1 ? scaling->kind : ROPE_SCALE_NONE;
    double s = kind ? scaling->factor : 1.0, b = base, m = 1.0;
    if (kind == ROPE_SCALE_NTK) b = base * pow(s, (double)hd / ((double)hd - 2.0));
    if (kind == ROPE_SCALE_YARN) m = 0.1 * log(s) + 1.0;
    for (size_t i = 0; i < half; i++) {
        /* double precision: at long contexts t*freq is large and float angles drift */
        double freq = pow(b, -2.0 * (double)i / (double)hd);
        if (kind == ROPE_SCALE_LINEAR) freq /= s;
        if (kind == ROPE_SCALE_YARN) {
            double r = scaling->orig_context * freq / 6.283185307179586, g = (r - 1.0) / 31.0;
            g = g < 0 ? 0 : g > 1 ? 1 : g;
            freq = (1.0 - g) * freq / s + g * freq;
        }
        for (size_t t = 0; t < T; t++) {
            double a = (double)t * freq;
            cos_tab[t * half + i] = (float)(m * cos(a));
            sin_tab[t * half + i] = (float)(m * sin(a));
        }
    }
}

/* Rotates, in each row, n_rot vectors of rd floats starting at off, off + head_stride, ... */
static void rope_rotate(float *x, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                        size_t n_rot, size_t head_stride, size_t off, size_t rd, size_t pos0, float sign) {
    size_t half = rd / 2;
#pragma omp parallel for collapse(2) schedule(static) if (B * T * n_rot * rd >= AP_PAR_MIN)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *co = cos_tab + (t + pos0) * half;
            const float *si = sin_tab + (t + pos0) * half;
            float *row = x + (b * T + t) * stride + off;
            for (size_t h = 0; h < n_rot; h++) {
                float *v = row + h * head_stride;
#pragma omp simd /* the tables never alias x: no runtime overlap checks per head */
                for (size_t i = 0; i < half; i++) {
                    float x0 = v[i], x1 = v[i + half], s = sign * si[i];
                    v[i] = x0 * co[i] - x1 * s;
                    v[i + half] = x0 * s + x1 * co[i];
                }
            }
        }
}

void rope_forward(float *x, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                  size_t n_rot, size_t hd, size_t pos0) {
    rope_rotate(x, cos_tab, sin_tab, B, T, stride, n_rot, hd, 0, hd, pos0, 1.0f);
}

void rope_backward(float *dx, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                   size_t n_rot, size_t hd, size_t pos0) {
    rope_rotate(dx, cos_tab, sin_tab, B, T, stride, n_rot, hd, 0, hd, pos0, -1.0f);
}

void rope_part_forward(float *x, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                       size_t n_rot, size_t head_stride, size_t off, size_t rd, size_t pos0) {
    rope_rotate(x, cos_tab, sin_tab, B, T, stride, n_rot, head_stride, off, rd, pos0, 1.0f);
}

void rope_part_backward(float *dx, const float *cos_tab, const float *sin_tab, size_t B, size_t T, size_t stride,
                        size_t n_rot, size_t head_stride, size_t off, size_t rd, size_t pos0) {
    rope_rotate(dx, cos_tab, sin_tab, B, T, stride, n_rot, head_stride, off, rd, pos0, -1.0f);
}

void value_mix_forward(float *x, const float *ve, const float *lambda, const int *tokens, size_t N, size_t stride,
                       size_t off, size_t kvd) {
    float l0 = lambda[0], l1 = lambda[1];
#pragma omp parallel for schedule(static) if (N * kvd >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *v = x + n * stride + off;
        const float *e = ve + (size_t)tokens[n] * kvd;
        for (size_t i = 0; i < kvd; i++) v[i] = l0 * v[i] + l1 * e[i];
    }
}

void value_mix_backward(float *dx, float *dve, float *dlambda, const float *v_raw, const float *ve, const float *lambda,
                        const int *tokens, size_t N, size_t stride, size_t off, size_t kvd) {
    float l0 = lambda[0], l1 = lambda[1];
    /* mixing-scalar gradients: double sums in a fixed order (8 lanes, then their total), so they
     * stay exact to float and independent of the thread count; one serial chain was 1.7% of a
     * speedrun step */
    double d0[8] = {0}, d1[8] = {0};
    for (size_t n = 0; n < N; n++) {
        const float *g = dx + n * stride + off, *v = v_raw + n * stride + off, *e = ve + (size_t)tokens[n] * kvd;
        size_t i = 0;
        for (; i + 8 <= kvd; i += 8)
#pragma omp simd
            for (size_t k = 0; k < 8; k++) {
                d0[k] += (double)g[i + k] * v[i + k];
                d1[k] += (double)g[i + k] * e[i + k];
            }
        for (; i < kvd; i++) {
            d0[i % 8] += (double)g[i] * v[i];
            d1[i % 8] += (double)g[i] * e[i];
        }
    }
    double t0 = 0.0, t1 = 0.0;
    for (size_t k = 0; k < 8; k++) t0 += d0[k], t1 += d1[k];
    dlambda[0] += (float)t0;
    dlambda[1] += (float)t1;
    /* table gradient: threads own column slices, as in embedding_backward */
#pragma omp parallel if (N * kvd >= AP_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t c0 = kvd * id / nt, c1 = kvd * (id + 1) / nt;
        for (size_t n = 0; n < N; n++) {
            const float *g = dx + n * stride + off;
            float *de = dve + (size_t)tokens[n] * kvd;
            for (size_t i = c0; i < c1; i++) de[i] += l1 * g[i];
        }
    }
#pragma omp parallel for schedule(static) if (N * kvd >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *g = dx + n * stride + off;
        for (size_t i = 0; i < kvd; i++) g[i] *= l0;
    }
}
