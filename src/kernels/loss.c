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

/* Row n of softmax(z/T) from p = softmax(z): p^(1/T) normalised (p = 0 stays 0). */
static void tempered_row(float *out, const float *p, size_t V, float T) {
    double sum = 0.0;
    if (T == 1.0f) {
        for (size_t v = 0; v < V; v++) sum += out[v] = p[v];
    } else {
        float inv = 1.0f / T;
        for (size_t v = 0; v < V; v++) sum += out[v] = p[v] > 0.0f ? powf(p[v], inv) : 0.0f;
    }
    float scale = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    for (size_t v = 0; v < V; v++) out[v] *= scale;
}

void distill_targets(float *q, const float *p, size_t N, size_t V, float T) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) tempered_row(q + n * V, p + n * V, V, T);
}

void distill_forward(float *losses, const float *probs, const float *q, const int *targets, size_t N, size_t V,
                     float T) {
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        losses[n] = 0.0f;
        if (targets[n] < 0) continue;
        const float *p = probs + n * V, *qn = q + n * V;
        double kl = 0.0, sum = 0.0;
        for (size_t v = 0; v < V; v++) sum += T == 1.0f ? p[v] : (p[v] > 0.0f ? pow(p[v], 1.0 / T) : 0.0);
        for (size_t v = 0; v < V; v++) {
            if (!(qn[v] > 0.0f)) continue;
            double sv = (T == 1.0f ? p[v] : (p[v] > 0.0f ? pow(p[v], 1.0 / T) : 0.0)) / sum;
            kl += qn[v] * (log(qn[v]) - log(sv > 1e-45 ? sv : 1e-45));
        }
        losses[n] = (float)(kl * T * T);
    }
}

void distill_backward(float *q, const float *probs, const int *targets, float weight, float dloss, size_t N, size_t V,
                      float T) {
    float c = weight * dloss * T;
#pragma omp parallel for schedule(static) if (N * V >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *qn = q + n * V;
        if (targets[n] < 0) {
            for (size_t v = 0; v < V; v++) qn[v] = 0.0f;
            continue;
        }
        const float *p = probs + n * V;
        double sum = 0.0;
        float inv = 1.0f / T;
        for (size_t v = 0; v < V; v++) sum += T == 1.0f ? p[v] : (p[v] > 0.0f ? powf(p[v], inv) : 0.0f);
        float scale = sum > 0 ? (float)(1.0 / sum) : 0.0f;
        for (size_t v = 0; v < V; v++) {
            float sv = (T == 1.0f ? p[v] : (p[v] > 0.0f ? powf(p[v], inv) : 0.0f)) * scale;
            qn[v] = c * (sv - qn[v]);
        }
    }
}
