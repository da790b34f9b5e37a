/* moe.c - mixture-of-experts routing: router scores and top-k choice, the balance loss, the
 * dispatch of token rows to experts and the gated combination of their outputs (see ops.h).
 * The experts themselves are ordinary products (linear.c) over each expert's rows. */
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

void moe_route_forward(float *scores, int *sel, float *gate, const float *logits, const float *bias, size_t N,
                       size_t E, size_t K, int sigmoid) {
#pragma omp parallel for schedule(static) if (N * E >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *l = logits + n * E;
        float *s = scores + n * E;
        if (sigmoid) {
            for (size_t e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-l[e]));
        } else {
            float mx = l[0], sum = 0.0f;
            for (size_t e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
            for (size_t e = 0; e < E; e++) sum += s[e] = expf(l[e] - mx);
            for (size_t e = 0; e < E; e++) s[e] /= sum;
        }
        /* top-k of score + bias, k passes (E is small); ties go to the lower expert index */
        int *pick = sel + n * K;
        float *g = gate + n * K, total = 0.0f;
        for (size_t k = 0; k < K; k++) {
            int best = -1;
            float best_key = 0.0f;
            for (size_t e = 0; e < E; e++) {
                int taken = 0;
                for (size_t j = 0; j < k; j++) taken |= pick[j] == (int)e;
                float key = s[e] + (bias ? bias[e] : 0.0f);
                if (!taken && (best < 0 || key > best_key)) best = (int)e, best_key = key;
            }
            pick[k] = best;
            g[k] = s[best];
            total += g[k];
        }
        if (sigmoid)
            for (size_t k = 0; k < K; k++) g[k] /= total;
    }
}

void moe_route_backward(float *dlogits, const float *dgate, const float *aux_coef, const float *scores, const int *sel,
                        const float *gate, size_t N, size_t E, size_t K, int sigmoid) {
#pragma omp parallel for schedule(static) if (N * E >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *s = scores + n * E, *dg = dgate + n * K, *g = gate + n * K;
        const int *pick = sel + n * K;
        float *dl = dlogits + n * E; /* first d scores, then d logits in place */
        for (size_t e = 0; e < E; e++) dl[e] = 0.0f;
        if (sigmoid) { /* g_k = s_k / S over the chosen: ds_k = (dg_k - sum_j dg_j g_j) / S */
            float S = 0.0f, dot = 0.0f;
            for (size_t k = 0; k < K; k++) S += s[pick[k]], dot += dg[k] * g[k];
            for (size_t k = 0; k < K; k++) dl[pick[k]] += (dg[k] - dot) / S;
        } else {
            for (size_t k = 0; k < K; k++) dl[pick[k]] += dg[k];
        }
        if (aux_coef) { /* the balance loss reads p = s (softmax) or s / sum_e s (sigmoid) */
            if (sigmoid) {
                float sum = 0.0f, dot = 0.0f;
                for (size_t e = 0; e < E; e++) sum += s[e];
                for (size_t e = 0; e < E; e++) dot += aux_coef[e] * s[e] / sum;
                for (size_t e = 0; e < E; e++) dl[e] += (aux_coef[e] - dot) / sum;
            } else {
                for (size_t e = 0; e < E; e++) dl[e] += aux_coef[e];
            }
        }
        if (sigmoid) {
            for (size_t e = 0; e < E; e++) dl[e] *= s[e] * (1.0f - s[e]);
        } else {
            float dot = 0.0f;
            for (size_t e = 0; e < E; e++) dot += s[e] * dl[e];
            for (size_t e = 0; e < E; e++) dl[e] = s[e] * (dl[e] - dot);
        }
    }
}

float moe_balance_forward(float *aux_coef, float *load, const float *scores, const int *sel, size_t N, size_t E,
                          size_t K, float alpha, int sigmoid) {
    /* load_e = tokens routed to e; P_e = mean normalised score; f_e = E / (K N) load_e */
    for (size_t e = 0; e < E; e++) load[e] = 0.0f;
    for (size_t i = 0; i < N * K; i++) load[sel[i]] += 1.0f;
    if (!aux_coef) return 0.0f;
    float *P = aux_coef; /* P first, then the coefficients in place */
    for (size_t e = 0; e < E; e++) P[e] = 0.0f;
    for (size_t n = 0; n < N; n++) {
        const float *s = scores + n * E;
        float sum = 1.0f;
        if (sigmoid) {
            sum = 0.0f;
            for (size_t e = 0; e < E; e++) sum += s[e];
        }
        for (size_t e = 0; e < E; e++) P[e] += s[e] / sum;
    }
    double loss = 0.0;
    for (size_t e = 0; e < E; e++) {
        double f = (double)E / ((double)K * (double)N) * load[e];
        loss += f * (P[e] / (double)N);
        aux_coef[e] = (float)(alpha * f / (double)N);
    }
    return (float)(alpha * loss);
}

void moe_dispatch(int *order, int *pos, int *eoff, const int *sel, size_t N, size_t E, size_t K) {
    for (size_t e = 0; e <= E; e++) eoff[e] = 0;
    for (size_t i = 0; i < N * K; i++) eoff[sel[i] + 1]++;
    for (size_t e = 0; e < E; e++) eoff[e + 1] += eoff[e];
    /* stable counting sort: eoff[e] walks expert e's rows, then is moved back to its start */
    for (size_t i = 0; i < N * K; i++) {
        int at = eoff[sel[i]]++;
        order[at] = (int)i, pos[i] = at;
    }
    for (size_t e = E; e > 0; e--) eoff[e] = eoff[e - 1];
    eoff[0] = 0;
}

void moe_gather_forward(float *rows, const float *inp, const int *order, size_t NK, size_t K, size_t C) {
#pragma omp parallel for schedule(static) if (NK * C >= AP_PAR_MIN)
    for (size_t j = 0; j < NK; j++) memcpy(rows + j * C, inp + (size_t)order[j] / K * C, C * sizeof(float));
}

void moe_gather_backward(float *dinp, const float *drows, const int *pos, size_t N, size_t K, size_t C) {
#pragma omp parallel for schedule(static) if (N * K * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *d = dinp + n * C;
        for (size_t k = 0; k < K; k++) {
            const float *r = drows + (size_t)pos[n * K + k] * C;
            for (size_t c = 0; c < C; c++) d[c] += r[c];
        }
    }
}

void moe_combine_forward(float *out, const float *rows, const float *gate, const int *pos, size_t N, size_t K,
                         size_t C) {
#pragma omp parallel for schedule(static) if (N * K * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *o = out + n * C;
        for (size_t k = 0; k < K; k++) {
            const float *r = rows + (size_t)pos[n * K + k] * C;
            float g = gate[n * K + k];
            for (size_t c = 0; c < C; c++) o[c] += g * r[c];
        }
    }
}

void moe_combine_backward(float *drows, float *dgate, const float *dout, const float *rows, const float *gate,
                          const int *pos, size_t N, size_t K, size_t C) {
#pragma omp parallel for schedule(static) if (N * K * C >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * C;
        for (size_t k = 0; k < K; k++) {
            size_t j = (size_t)pos[n * K + k];
            const float *r = rows + j * C;
            float *dr = drows + j * C, g = gate[n * K + k], dot = 0.0f;
            for (size_t c = 0; c < C; c++) dr[c] = g * d[c], dot += d[c] * r[c];
            dgate[n * K + k] = dot;
        }
    }
}

void moe_bias_update(float *bias, const float *load, size_t E, float rate) {
    float mean = 0.0f;
    for (size_t e = 0; e < E; e++) mean += load[e];
    mean /= (float)E;
    for (size_t e = 0; e < E; e++) bias[e] += load[e] < mean ? rate : load[e] > mean ? -rate : 0.0f;
}
