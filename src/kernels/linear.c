/* linear.c - fully connected layer on gemm_sgemm (see ops.h).
 * Weights are stored (out, in) like PyTorch's nn.Linear, so the forward is inp . W^T. */
#include "kernels/gemm.h"
#include "kernels/ops.h"

#include <cblas.h>
#include <omp.h>

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t M, size_t IC,
                    size_t OC) {
    if (M == 1) /* one row (decoding): OpenBLAS 0.3.21 would pack W for a full GEMM */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OC, (int)IC, 1.0f, weight, (int)IC, inp, 1, 0.0f, out, 1);
    else
        gemm_sgemm(0, 1, M, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static) if (M * OC >= AP_PAR_MIN)
        for (size_t m = 0; m < M; m++) {
            float *o = out + m * OC;
            for (size_t j = 0; j < OC; j++) o[j] += bias[j];
        }
    }
}

void linear_backward(float *dinp, GradWrite dinp_mode, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, size_t M, size_t IC, size_t OC) {
    /* dinp (M,IC) (+)= dout (M,OC) . W (OC,IC) */
    if (dinp)
        gemm_sgemm(0, 0, M, IC, OC, 1.0f, dout, OC, weight, IC, dinp_mode == GRAD_SET ? 0.0f : 1.0f, dinp, IC);
    /* dW (OC,IC) += dout^T (OC,M) . inp (M,IC) */
    gemm_sgemm(1, 0, OC, IC, M, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) {
        /* Column sums: each thread owns a slice of columns and walks the rows in order. */
#pragma omp parallel if (M * OC >= AP_PAR_MIN)
        {
            size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            size_t j0 = OC * id / nt, j1 = OC * (id + 1) / nt;
            for (size_t m = 0; m < M; m++) {
                const float *d = dout + m * OC;
                for (size_t j = j0; j < j1; j++) dbias[j] += d[j];
            }
        }
    }
}
