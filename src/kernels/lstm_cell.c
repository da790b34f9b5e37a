/* lstm_cell.c - the LSTM cell's elementwise part, between the gate GEMMs (see ops.h).
 *
 * The recurrence is serial in time, so each call is one time step of B rows; the training loop
 * and the one-token decoder both call it, so decoding applies exactly the training nonlinearities
 * (ap_sigmoidf, ap_tanhf). Rows are independent: parallel over rows, and each row's hidden units
 * are one vector loop (as a collapsed parallel loop they were scalar: a third of an LSTM run). */
#include "kernels/fastmath.h"
#include "kernels/ops.h"

static inline void cell_forward_row(float *h, float *c, float *tc, float *gates, const float *c_prev, size_t b,
                                    size_t H, size_t ld, size_t ld_prev) {
    float *g = gates + b * 4 * ld;
#pragma omp simd
    for (size_t j = 0; j < H; j++) {
        float gi = ap_sigmoidf(g[j]), gf = ap_sigmoidf(g[H + j]), gg = ap_tanhf(g[2 * H + j]),
              go = ap_sigmoidf(g[3 * H + j]);
        g[j] = gi, g[H + j] = gf, g[2 * H + j] = gg, g[3 * H + j] = go;
        float cprev = c_prev[b * ld_prev + j];
        float cc = gf * cprev + gi * gg, t = ap_tanhf(cc);
        c[b * ld + j] = cc;
        tc[b * ld + j] = t;
        h[b * ld + j] = go * t;
    }
}

void lstm_cell_forward(float *h, float *c, float *tc, float *gates, const float *c_prev, size_t B, size_t H, size_t ld,
                       size_t ld_prev) {
    if (!ap_parallel_worth(B * H * 4)) {
        for (size_t b = 0; b < B; b++) cell_forward_row(h, c, tc, gates, c_prev, b, H, ld, ld_prev);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < B; b++) cell_forward_row(h, c, tc, gates, c_prev, b, H, ld, ld_prev);
}

static inline void cell_backward_row(float *dgates, float *dc_prev, const float *dh, const float *dc,
                                     const float *gates, const float *c_prev, const float *tc, size_t b, size_t H,
                                     size_t ld, size_t ld_prev) {
    const float *g = gates + b * 4 * ld;
    float *dg = dgates + b * 4 * ld;
#pragma omp simd
    for (size_t j = 0; j < H; j++) {
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];
        float t = tc[b * ld + j];
        float cprev = c_prev[b * ld_prev + j];
        float dhj = dh[b * H + j];
        /* the gradient reaching c: from later steps, and through h = o * tanh(c) */
        float dcj = dc[b * H + j] + dhj * go * (1.0f - t * t);
        dg[j] = dcj * gg * gi * (1.0f - gi);
        dg[H + j] = dcj * cprev * gf * (1.0f - gf);
        dg[2 * H + j] = dcj * gi * (1.0f - gg * gg);
        dg[3 * H + j] = dhj * t * go * (1.0f - go);
        dc_prev[b * H + j] = dcj * gf;
    }
}

void lstm_cell_backward(float *dgates, float *dc_prev, const float *dh, const float *dc, const float *gates,
                        const float *c_prev, const float *tc, size_t B, size_t H, size_t ld, size_t ld_prev) {
    if (!ap_parallel_worth(B * H * 4)) {
        for (size_t b = 0; b < B; b++) cell_backward_row(dgates, dc_prev, dh, dc, gates, c_prev, tc, b, H, ld, ld_prev);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < B; b++) cell_backward_row(dgates, dc_prev, dh, dc, gates, c_prev, tc, b, H, ld, ld_prev);
}
