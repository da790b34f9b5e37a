/* mla.c - multi-head latent attention's own data movement: keys and values assembled from the
 * latent's up-projection and the shared RoPE key, and decoding against a cache of latents in the
 * absorbed form (see ops.h). The projections are ordinary products (linear.c). */
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

void mla_assemble_forward(float *qkv, const float *kvu, const float *kr, size_t N, size_t H, size_t hd, size_t dn) {
    size_t dr = hd - dn, QKV = 3 * H * hd, U = dn + hd;
#pragma omp parallel for schedule(static) if (N * QKV >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        float *k = qkv + n * QKV + H * hd, *v = k + H * hd;
        const float *u = kvu + n * H * U, *r = kr + n * dr;
        for (size_t h = 0; h < H; h++) {
            memcpy(k + h * hd, u + h * U, dn * sizeof(float));
            memcpy(k + h * hd + dn, r, dr * sizeof(float));
            memcpy(v + h * hd, u + h * U + dn, hd * sizeof(float));
        }
    }
}

void mla_assemble_backward(float *dkvu, float *dkr, const float *dqkv, size_t N, size_t H, size_t hd, size_t dn) {
    size_t dr = hd - dn, QKV = 3 * H * hd, U = dn + hd;
#pragma omp parallel for schedule(static) if (N * QKV >= AP_PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *k = dqkv + n * QKV + H * hd, *v = k + H * hd;
        float *u = dkvu + n * H * U, *r = dkr + n * dr;
        for (size_t i = 0; i < dr; i++) r[i] = 0.0f;
        for (size_t h = 0; h < H; h++) { /* heads in order: the shared key's sum is deterministic */
            memcpy(u + h * U, k + h * hd, dn * sizeof(float));
            for (size_t i = 0; i < dr; i++) r[i] += k[h * hd + dn + i];
            memcpy(u + h * U + dn, v + h * hd, hd * sizeof(float));
        }
    }
}

void mla_decode_forward(float *out, float *att, float *scratch, const float *q, const float *lat, const float *kr,
                        const float *wukv, size_t T, size_t H, size_t hd, size_t dn, size_t R) {
    size_t dr = hd - dn, U = dn + hd;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (H * T * R >= AP_PAR_MIN)
    for (size_t h = 0; h < H; h++) {
        const float *qh = q + h * hd, *wk = wukv + h * U * R, *wv = wk + dn * R;
        float *qa = scratch + h * R, *mix = scratch + (H + h) * R, *p = att + h * T;
        /* the query absorbed into the key up-projection: qa = q_nope . W_uk (R) */
        for (size_t r = 0; r < R; r++) qa[r] = 0.0f;
        for (size_t i = 0; i < dn; i++)
            for (size_t r = 0; r < R; r++) qa[r] += qh[i] * wk[i * R + r];
        float mx = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            const float *l = lat + t * R, *k = kr + t * dr;
            float s = 0.0f;
            for (size_t r = 0; r < R; r++) s += qa[r] * l[r];
            for (size_t i = 0; i < dr; i++) s += qh[dn + i] * k[i];
            p[t] = s * scale;
            mx = p[t] > mx ? p[t] : mx;
        }
        float sum = 0.0f;
        for (size_t t = 0; t < T; t++) sum += p[t] = expf(p[t] - mx);
        for (size_t r = 0; r < R; r++) mix[r] = 0.0f;
        for (size_t t = 0; t < T; t++) {
            float w = p[t] /= sum;
            for (size_t r = 0; r < R; r++) mix[r] += w * lat[t * R + r];
        }
        /* the value up-projection after the mix: out_h = W_uv . mix */
        for (size_t i = 0; i < hd; i++) {
            float s = 0.0f;
            for (size_t r = 0; r < R; r++) s += wv[i * R + r] * mix[r];
            out[h * hd + i] = s;
        }
    }
}
