/* loss.c - fused, numerically stable softmax + cross-entropy (see ops.h).
 * Subtracting the row maximum before exp keeps every exponent <= 0, so nothing overflows;
 * the log-sum-exp is accumulated in double so a 50k-class row loses no precision. */
#include "kernels/ops.h"
#include "kernels/fastmath.h"

#include <math.h>

void crossentropy_softmax_forward(float *losses, float *probs, const float *logits, const int *targets,
                                  size_t N, size_t V) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float *p = probs + n * V;
        int tgt = targets[n];
        float zt = tgt >= 0 ? z[tgt] : 0.0f; /* read before probs (which may alias z) overwrite it */
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (size_t v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (size_t v = 0; v < V; v++) {
            float e = ap_expf(z[v] - mx);
            p[v] = e;
            sum += e;
        }
        double logsum = log(sum);
        float loss = tgt >= 0 ? (float)(logsum - (double)(zt - mx)) : 0.0f;
        float inv = (float)(1.0 / sum);
#pragma omp simd
        for (size_t v = 0; v < V; v++) p[v] *= inv;
        losses[n] = loss;
    }
}

void crossentropy_softmax_backward(float *dlogits, const float *probs, const int *targets, float dloss, size_t N,
                                   size_t V) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *p = probs + n * V;
        float *d = dlogits + n * V;
        int tgt = targets[n];
        if (tgt < 0) {
            for (size_t v = 0; v < V; v++) d[v] = 0.0f;
            continue;
        }
#pragma omp simd
        for (size_t v = 0; v < V; v++) d[v] = p[v] * dloss;
        d[tgt] -= dloss;
    }
}

void zloss_forward(float *logz, const float *logits, size_t N, size_t V) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (size_t v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (size_t v = 0; v < V; v++) sum += ap_expf(z[v] - mx);
        logz[n] = (float)(log(sum) + mx);
    }
}

void zloss_backward(float *probs, const float *logz, const int *targets, float z, size_t N, size_t V) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        float *p = probs + n * V, c = 1.0f + 2.0f * z * logz[n];
#pragma omp simd
        for (size_t v = 0; v < V; v++) p[v] *= c;
    }
}
